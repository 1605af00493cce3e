/**
 * The Trainer (the reference's sparsify/trainer.py: Trainer): resolves hookpoints, creates
 * the coders (slots.ts), and runs the step loop. Each optimizer step is one `hooks.run`
 * bridge call (two on the very first step, whose first batch initialises the biases): the
 * runtime runs the model with the coders' hook programs on every batch of the step, then
 * the optimizer programs (step.ts assembles them), and replies with metric sums. Which rows
 * each batch holds is data-order.ts's; checkpoints are run-state.ts's, metrics metrics.ts's.
 */
import { join } from 'node:path';
import { getRuntime, type Runtime } from '../bridge/runtime.js';
import { hookWidths, programReleaseScratch, runtimeConfigure, wandbFinish, wandbInit, type HooksRunReply } from '../bridge/ops.js';
import { ConfigError } from '../config/errors.js';
import { snakeKeys } from '../util/case.js';
import { isParsedTrainConfig, trainConfig, variantsOf, type TrainConfig, type TrainConfigInput } from '../config/train.js';
import type { Variant } from '../config/sweep.js';
import type { CrossLayerEvalReport, EvalReport } from '../eval/index.js';
import type { TokenDataset } from '../data/dataset.js';
import type { TrainableModel } from '../model/language-model.js';
import { cachedHookpoints, modelHookpoints } from '../model/hookpoints.js';
import { DataOrder } from './data-order.js';
import { evaluateAsSaved, evaluateCrossLayerAsSaved } from './eval.js';
import { TrainingMetrics, crossLayerEvalLogEntries, evalLogEntries, kEntries, writeMetricsLine, type LossWindow, type MetricTable, type MetricsSink } from './metrics.js';
export type { CoderMetrics, MetricTable } from './metrics.js';
import { loadCheckpoint, saveBestCoders, saveCheckpoint, type RunStateSource } from './run-state.js';
import { lockRunDir, prepareFreshRunDir, truncateMetrics, type RunLock } from './run-dir.js';
import type { TrainerOptions } from './options.js';
import { createSlots, kAt, type CoderSlot } from './slots.js';
import { StepRunner } from './step.js';

export type { CoderSlot };
export type { StepReport, TrainerOptions } from './options.js';

/** An evaluation after a step: the coders' report, or each cross-layer transcoder's; and its log entries. */
interface Evaluation {
  report?: EvalReport;
  crossLayer?: Record<string, CrossLayerEvalReport>;
  entries: Record<string, number>;
}

/**
 * Trains sparse coders on a model's activations.
 *
 * @example
 * const model = await loadModel('EleutherAI/pythia-70m', { kind: 'base' });
 * const data = await loadDataset('my-data', { tokenizer: await loadTokenizer('EleutherAI/pythia-70m'), ctxLen: 256 });
 * const trainer = new Trainer({ sae: { k: 32 }, batchSize: 8 }, data, model);
 * await trainer.fit();
 */
export class Trainer implements RunStateSource {
  readonly cfg: TrainConfig;
  readonly runDir: string;
  /** The full run configuration recorded in config.json. */
  readonly runConfig: Record<string, unknown>;
  /** This process's rank and the world size (0 and 1 when not distributed). */
  readonly rank: number;
  readonly worldSize: number;
  /** Hookpoints spread across ranks, activations all-gathered (else data parallel when worldSize > 1). */
  readonly distributeModules: boolean;
  /** The coders this rank trains. */
  slots: CoderSlot[] = [];
  /** The coder configurations trained on every hookpoint: one, or a sweep's. */
  readonly variants: Variant[];
  /** Every hookpoint of the run, and those this rank trains. */
  hookpoints: string[] = [];
  ownedHookpoints: string[] = [];
  /** Batches seen. */
  globalStep = 0;
  optimizerStep = 0;
  /** Tokens the whole world processed. */
  tokensSeen = 0;
  /** The k of the next batch (of the first coder; each slot holds its own). */
  k = 0;
  /** Which rows each batch holds (the rank's shard, the epochs' orders, the schedules' length). */
  readonly order: DataOrder;
  private initialised = false;
  /** loadState restored a checkpoint: fit continues that run. */
  private resumed = false;
  /** The run directory's lock, held from loadState or fit until fit ends or close(). */
  private lock: RunLock | undefined;
  private stopRequested = false;
  private wandb = false;
  private evalWarned = false;
  private rt!: Runtime;
  private steps!: StepRunner;
  private readonly log: (m: string) => void;

  constructor(
    cfg: TrainConfigInput | TrainConfig,
    readonly dataset: TokenDataset,
    readonly model: TrainableModel,
    private readonly options: TrainerOptions = {},
  ) {
    this.cfg = isParsedTrainConfig(cfg) ? cfg : trainConfig(cfg as TrainConfigInput);
    this.runDir = options.runDir ?? join(this.cfg.saveDir, this.cfg.runName ?? 'unnamed');
    this.runConfig = options.runConfig ?? (snakeKeys(this.cfg) as Record<string, unknown>);
    this.log = options.log ?? ((m) => process.stderr.write(`${m}\n`));
    this.rank = options.distributed?.rank ?? 0;
    this.worldSize = options.distributed?.worldSize ?? 1;
    this.distributeModules = this.worldSize > 1 && this.cfg.distributeModules;
    this.variants = variantsOf(this.cfg);
    this.order = new DataOrder(dataset.numRows, this.cfg.batchSize, this.cfg.epochs, this.worldSize);
  }

  /** Only rank 0 prints and logs. */
  get isMain(): boolean {
    return this.rank === 0;
  }
  get device(): string {
    return this.model.device;
  }
  /** Batches of the whole run (every epoch). */
  get totalSteps(): number {
    return this.order.totalSteps;
  }
  private get endToEnd(): boolean {
    return this.cfg.lossFn !== 'fvu';
  }

  /** Resolve hookpoints, measure widths and create the coders (done by fit when needed). */
  async init(): Promise<void> {
    if (this.initialised) return;
    this.rt = await getRuntime();
    const cached = this.model.cached;
    this.hookpoints = cached ? cachedHookpoints(cached.hookpoints, this.cfg) : await modelHookpoints(this.model, this.cfg);
    const widths = cached ? cached.widths : await hookWidths(this.model.model, this.hookpoints);
    this.slots = await createSlots(
      { hookpoints: this.hookpoints, widths, variants: this.variants, seeds: this.cfg.initSeeds, cached: cached !== undefined, finetune: this.cfg.finetune, crossLayer: this.cfg.crossLayer },
      { rank: this.rank, worldSize: this.worldSize, distributeModules: this.distributeModules, device: this.device, log: this.log },
    );
    this.ownedHookpoints = [...new Set(this.slots.map((s) => s.hookpoint))];
    this.steps = new StepRunner(this, this.rt);
    this.k = this.slots[0]?.k ?? this.cfg.sae.k;
    this.initialised = true;
    const lrs = [...new Set(this.slots.map((s) => s.lr.toExponential(2)))].join(', ');
    const sweep = this.variants.length > 1 ? ` in ${this.variants.length} configurations (${this.variants.map((v) => v.name).join(', ')})` : '';
    this.log(`Training ${this.slots.length} coder(s) on ${this.hookpoints.length} hookpoint(s)${sweep}: ${this.hookpoints.join(', ')} (lr ${lrs})`);
  }

  /** Ask the loop to stop after the current step, save, and return (Ctrl-C). */
  requestStop(): void {
    this.stopRequested = true;
  }

  /** Train over the dataset (from where a resumed state left off); saves at the end. */
  async fit(): Promise<{ steps: number; optimizerSteps: number; runDir: string; stopped: boolean }> {
    await this.init();
    if (this.isMain && !this.resumed && !this.lock) {
      // Never mix two runs in one directory: refuse, or move the earlier one aside.
      const aside = prepareFreshRunDir(this.runDir, this.options.overwrite ?? false);
      if (aside) this.log(`Moved the earlier run in ${this.runDir} to ${aside}`);
    }
    await this.takeLock();
    try {
      return await this.loop();
    } finally {
      this.close();
      // The gemm kernels' zero matrices ([N, M] each) are not needed after training.
      if (this.steps.sparseBackward === 'gemm') await programReleaseScratch(this.rt).catch(() => undefined);
    }
  }

  /** Release the run directory (done when fit ends; for a trainer that loaded a state and will not fit). */
  close(): void {
    this.lock?.release();
    this.lock = undefined;
  }

  /** Only rank 0 locks: the ranks of one run share its directory. */
  private async takeLock(): Promise<void> {
    if (this.isMain && !this.lock) this.lock = await lockRunDir(this.runDir);
  }

  private async loop(): Promise<{ steps: number; optimizerSteps: number; runDir: string; stopped: boolean }> {
    // As the reference's fit(): tensor cores (TF32) for float32 matmuls on the GPU.
    await runtimeConfigure({ matmulPrecision: 'high' }, this.rt);
    const total = this.totalSteps;
    if (this.cfg.logToWandb && this.isMain) {
      const run = await wandbInit('sparsify', this.cfg.runName ?? null, this.runConfig);
      this.wandb = run.ok;
      // wandb not installed: skipped quietly (log_to_wandb is on by default); installed but failing: said.
      if (!run.ok && !run.missing) this.log(`Not logging to wandb: ${run.reason}`);
    }
    if (this.globalStep === 0 && this.cfg.lossFn === 'ce' && this.isMain) this.log(`Initial CE loss: ${(await this.steps.cleanCe()).toFixed(4)}`);
    const sink: MetricsSink = {
      runDir: this.runDir,
      lossKey: this.endToEnd ? this.cfg.lossFn : null,
      omit: new Set([...(this.variants.every((v) => v.auxkAlpha === 0) ? ['auxk'] : []), ...(this.variants.some((v) => v.sae.multiTopk) ? [] : ['multi_topk_fvu'])]),
      wandb: this.wandb,
    };
    const tally = new TrainingMetrics(this.cfg.gradAccSteps, this.endToEnd ? 1 : this.cfg.microAccSteps, sink.lossKey);
    while (this.globalStep < total && !this.stopRequested) {
      const end = Math.min(this.globalStep + this.cfg.gradAccSteps, total);
      // As the reference: an optimizer step only after a whole accumulation group; the
      // gradients of a short last group are computed but never applied.
      const steps = end % this.cfg.gradAccSteps === 0;
      const replies: HooksRunReply[] = [];
      let from = this.globalStep;
      if (this.globalStep === 0 && !this.cfg.finetune) {
        // The very first batch sets b_dec (and transcoders' encoder bias) from its activations.
        replies.push(await this.runBatches(0, 1, { step: steps && end === 1, initBiases: true }));
        from = 1;
      }
      if (from < end) replies.push(await this.runBatches(from, end, { step: steps, initBiases: false }));
      const metrics = tally.add(replies, end - this.globalStep, this.slots.map((s) => s.name), steps);
      // As the reference: the next k is computed after the optimizer step from the batch
      // counter before it counts this step's last batch, so batch i >= 1 uses the k of batch i-1.
      if (steps) {
        for (const s of this.slots) s.k = kAt(s, end - 1);
        this.k = this.slots[0]?.k ?? this.k;
      }
      this.globalStep = end;
      // Each rank counts its own tokens, or every rank's when it reads them all.
      this.tokensSeen += replies.reduce((n, r) => n + r.tokens, 0) * (this.steps.readsAllRanks ? 1 : this.worldSize);
      if (!steps) {
        if (this.isMain) this.report(total, metrics, false, replies);
        break;
      }
      this.optimizerStep += 1;
      const logged = this.optimizerStep % this.cfg.wandbLogFrequency === 0;
      const evaluation = this.cfg.evalEvery > 0 && this.optimizerStep % this.cfg.evalEvery === 0 && this.isMain ? await this.evaluateNow() : undefined;
      if (this.isMain && (logged || evaluation)) {
        await writeMetricsLine(sink, { step: this.globalStep, optimizerStep: this.optimizerStep, tokens: this.tokensSeen, ...kEntries(this.slots, this.k) }, logged ? metrics : {}, evaluation?.entries ?? {});
      }
      if (logged) tally.logged();
      if (this.isMain) this.report(total, metrics, logged, replies, evaluation);
      if (this.optimizerStep % this.cfg.saveEvery === 0 && this.globalStep < total) {
        await this.save(tally.sinceSave);
        tally.sinceSave.clear();
      }
    }
    await this.save(tally.sinceSave);
    if (this.wandb) await wandbFinish();
    return { steps: this.globalStep, optimizerSteps: this.optimizerStep, runDir: this.runDir, stopped: this.stopRequested };
  }

  private report(totalSteps: number, metrics: MetricTable, logged: boolean, replies: readonly HooksRunReply[], evaluation?: Evaluation): void {
    const computeSeconds = replies.reduce((t, r) => t + r.seconds, 0);
    this.options.onStep?.({
      step: this.globalStep,
      totalSteps,
      optimizerStep: this.optimizerStep,
      tokens: this.tokensSeen,
      metrics,
      logged,
      k: this.k,
      computeSeconds,
      ...(evaluation?.report ? { eval: evaluation.report } : {}),
      ...(evaluation?.crossLayer ? { crossLayerEval: evaluation.crossLayer } : {}),
    });
  }

  /** Evaluate the coders as they would be saved now (see {@link evaluateAsSaved}). */
  private async evaluateNow(): Promise<Evaluation> {
    const data = this.options.evalData;
    if (!data) throw new ConfigError('eval_every needs held-out rows (TrainerOptions.evalData); the CLI takes them from --holdout or --max_examples');
    if (this.cfg.crossLayer) {
      const crossLayer = await evaluateCrossLayerAsSaved(this.model, this.slots, data, this.cfg);
      return { crossLayer, entries: crossLayerEvalLogEntries(crossLayer) };
    }
    const report = await evaluateAsSaved(this.model, this.slots, data, this.cfg);
    if (report.warnings.length && !this.evalWarned) {
      this.evalWarned = true;
      for (const w of report.warnings) this.log(`evaluation: ${w}`);
    }
    return { report, entries: evalLogEntries(report) };
  }

  /** Save a checkpoint, and the coders whose loss since the last save is their best under best/. */
  private async save(sinceSave: LossWindow): Promise<void> {
    await saveCheckpoint(this);
    if (!this.cfg.saveBest) return;
    const better = this.slots.filter((s) => {
      const loss = sinceSave.mean(s.name);
      if (loss === undefined || !(loss < s.bestLoss)) return false;
      s.bestLoss = loss;
      return true;
    });
    await saveBestCoders(this, better);
  }

  /** Restore a saved trainer state (coders, optimizer state, counters, step) from `dir`. */
  async loadState(dir: string = this.runDir): Promise<void> {
    await this.init();
    if (dir === this.runDir) await this.takeLock();
    const progress = await loadCheckpoint(this, dir, this.log);
    Object.assign(this, progress);
    this.resumed = dir === this.runDir;
    // The steps after the checkpoint will be logged again.
    if (this.isMain && dir === this.runDir) await truncateMetrics(this.runDir, this.globalStep);
    this.log(`Resumed from ${dir} at step ${this.globalStep}`);
  }

  /** Run batches [from, to) (and the optimizer step after them): one bridge call. */
  private async runBatches(from: number, to: number, what: { step: boolean; initBiases: boolean }): Promise<HooksRunReply> {
    const reply = await this.steps.batches(from, to, { ...what, tokensSeen: this.tokensSeen, optimizerStep: this.optimizerStep, stop: this.stopRequested });
    if (reply.stop) this.stopRequested = true;
    return reply;
  }
}
