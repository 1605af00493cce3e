/**
 * The Trainer (SPEC 3): resolves hookpoints, creates coders, and runs the step loop. Each
 * optimizer step is one `hooks.run` bridge call (two on the very first step, whose first
 * batch initialises the biases): the runtime runs the model with the coders' hook programs
 * on every batch of the step, then the optimizer programs, and replies with metric sums.
 */
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getRuntime, type Runtime } from '../bridge/runtime.js';
import type { PyObject } from '../bridge/handles.js';
import { SparsifyError } from '../bridge/errors.js';
import { ConfigError, snakeCase } from '../config/errors.js';
import { coderConfigToJson, numLatentsFor } from '../config/sparse-coder.js';
import { trainConfig, type TrainConfig, type TrainConfigInput } from '../config/train.js';
import { compileProgram, runProgram } from '../kernels/program.js';
import type { CoderStructure } from '../kernels/sparse-coder.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { downloadCoderFiles } from '../hub/download.js';
import type { TokenDataset } from '../data/dataset.js';
import type { TrainableModel } from '../model/language-model.js';
import { beginSave, commitSave, recover } from './checkpoint.js';
import { resolveHookpoints, type ModuleInfo } from './hookpoints.js';
import * as P from './programs.js';
import { currentK, defaultLr, initialK, linearWarmupDecay, scheduleFreeStep, type ScheduleFreeState } from './schedules.js';

/** One coder being trained: a hookpoint and a seed. */
export interface CoderSlot {
  /** Its name in the run directory: the hookpoint, or `hookpoint/seedN` with several seeds. */
  readonly name: string;
  readonly hookpoint: string;
  readonly seed: number;
  coder: SparseCoder;
  /** Optimizer state and dead-latent counters (a runtime bundle). */
  state: PyObject;
  readonly lr: number;
  readonly sf: ScheduleFreeState;
  bestLoss: number;
}

/** What the trainer reports after each optimizer step. */
export interface StepReport {
  /** Batches done. */
  step: number;
  totalSteps: number;
  optimizerStep: number;
  tokens: number;
  /** Per coder: averaged fvu (and auxk, multi_topk_fvu, dead_pct), plus ce/kl when end to end. */
  metrics: Record<string, Record<string, number>>;
  /** True when these metrics were logged (every wandb_log_frequency steps). */
  logged: boolean;
  k: number;
}

export interface TrainerOptions {
  /** Where checkpoints go; default `save_dir/run_name` ('unnamed' when no run name). */
  runDir?: string;
  /** Progress and messages. */
  onStep?: (report: StepReport) => void;
  log?: (message: string) => void;
  /** The full run configuration to record in config.json (CLI options included). */
  runConfig?: Record<string, unknown>;
  /** This process's place in a torch.distributed run (from `initDistributed`). */
  distributed?: { rank: number; worldSize: number };
}

interface StepResult {
  tokens: number;
  seconds: number;
  stop: boolean;
  [key: string]: Record<string, number> | number | boolean;
}

const STATE_VERSION = 1;
/** Metrics the fvu hook sums once per micro-batch chunk. */
const CHUNKED_METRICS = new Set(['fvu', 'auxk', 'multi_topk_fvu']);

/**
 * Trains sparse coders on a model's activations.
 *
 * @example
 * const model = await loadModel('EleutherAI/pythia-70m', { kind: 'base' });
 * const data = await loadDataset('my-data', { tokenizer: await loadTokenizer('EleutherAI/pythia-70m'), ctxLen: 256 });
 * const trainer = new Trainer({ sae: { k: 32 }, batchSize: 8 }, data, model);
 * await trainer.fit();
 */
export class Trainer {
  readonly cfg: TrainConfig;
  readonly runDir: string;
  slots: CoderSlot[] = [];
  hookpoints: string[] = [];
  /** Batches seen. */
  globalStep = 0;
  optimizerStep = 0;
  tokensSeen = 0;
  private k = 0;
  private initialised = false;
  private stopRequested = false;
  private wandb = false;
  private rt!: Runtime;
  private readonly log: (m: string) => void;

  constructor(
    cfg: TrainConfigInput | TrainConfig,
    readonly dataset: TokenDataset,
    readonly model: TrainableModel,
    private readonly options: TrainerOptions = {},
  ) {
    this.cfg = trainConfig(cfg as TrainConfigInput);
    this.runDir = options.runDir ?? join(this.cfg.saveDir, this.cfg.runName ?? 'unnamed');
    this.log = options.log ?? ((m) => process.stderr.write(`${m}\n`));
  }

  /** This rank and the world size (0 and 1 when not distributed). */
  get rank(): number {
    return this.options.distributed?.rank ?? 0;
  }
  get worldSize(): number {
    return this.options.distributed?.worldSize ?? 1;
  }
  /** Data parallel: every rank holds every coder; gradients are averaged. */
  private get ddp(): boolean {
    return this.worldSize > 1 && !this.cfg.distributeModules;
  }
  /** Hookpoints split across ranks; activations all-gathered. */
  private get distributed(): boolean {
    return this.worldSize > 1 && this.cfg.distributeModules;
  }
  /** Rows of this rank's shard: the remainder that does not divide is dropped. */
  get shardRows(): number {
    return Math.floor(this.dataset.numRows / this.worldSize);
  }
  /** Batches in one pass over this rank's shard (the last one may be short). */
  get totalSteps(): number {
    return Math.ceil(this.shardRows / this.cfg.batchSize);
  }
  /** bf16 autocast for the coders' forward, as the reference does on GPUs that support it. */
  private get autocast(): boolean {
    return this.model.device.startsWith('cuda') && this.rt.info.bf16;
  }

  /** Only rank 0 prints, logs, and saves shared state. */
  get isMain(): boolean {
    return this.rank === 0;
  }
  /** Hookpoints this rank trains. */
  ownedHookpoints: string[] = [];

  private get structure(): CoderStructure {
    const { activation, transcode, skipConnection, multiTopk, normalizeDecoder } = this.cfg.sae;
    return { activation, transcode, skipConnection, multiTopk, normalizeDecoder };
  }

  private get endToEnd(): boolean {
    return this.cfg.lossFn !== 'fvu';
  }

  /** Resolve hookpoints, measure widths and create the coders (done by fit when needed). */
  async init(): Promise<void> {
    if (this.initialised) return;
    this.rt = await getRuntime();
    this.hookpoints = await modelHookpoints(this.model, this.cfg);
    const widths = await this.rt.call<Record<string, { output: number; input: number | null }>>('model.hook_widths', {
      model: this.model.model,
      names: this.hookpoints,
    });
    this.ownedHookpoints = this.hookpoints;
    if (this.distributed) {
      const per = this.hookpoints.length / this.worldSize;
      if (!Number.isInteger(per)) {
        throw new ConfigError(`distribute_modules: ${this.hookpoints.length} hookpoints do not divide evenly across ${this.worldSize} ranks; choose hookpoints or a world size that divides them`);
      }
      const sizes = new Set(this.hookpoints.map((h) => widths[h]!.output));
      if (sizes.size > 1) {
        throw new ConfigError(`distribute_modules needs every hookpoint to have the same width; got ${this.hookpoints.map((h) => `${h}=${widths[h]!.output}`).join(', ')}`);
      }
      this.ownedHookpoints = this.hookpoints.slice(this.rank * per, (this.rank + 1) * per);
      this.log(`Rank ${this.rank} trains ${this.ownedHookpoints.join(', ')}`);
    }
    const seeds = this.cfg.initSeeds;
    // finetune: a local run directory, or a Hub repo of coders (as the reference accepts).
    const finetuneRoot = this.cfg.finetune && !existsSync(this.cfg.finetune) ? await downloadCoderFiles(this.cfg.finetune, { subdirPattern: '*' }) : this.cfg.finetune;
    for (const hookpoint of this.ownedHookpoints) {
      const w = widths[hookpoint]!;
      if (this.cfg.sae.transcode && w.input !== null && w.input !== w.output) {
        throw new ConfigError(`hookpoint '${hookpoint}': a transcoder needs equal input and output widths (got ${w.input} -> ${w.output})`);
      }
      for (const seed of seeds) {
        const name = seeds.length > 1 ? `${hookpoint}/seed${seed}` : hookpoint;
        let coder: SparseCoder;
        if (finetuneRoot) {
          coder = await SparseCoder.loadFromDisk(join(finetuneRoot, name), { device: this.model.device });
          if (coder.dIn !== w.output) throw new ConfigError(`finetune: ${join(finetuneRoot, name)} has d_in=${coder.dIn} but '${hookpoint}' has width ${w.output}`);
        } else {
          coder = await SparseCoder.create(w.output, this.cfg.sae, { seed, device: this.model.device });
        }
        const optimizer = this.cfg.optimizer;
        const { state } = await runProgram<{ state: PyObject }>(P.stateInitProgram(this.structure, optimizer), { params: coder.params });
        this.slots.push({
          name,
          hookpoint,
          seed,
          coder,
          state,
          lr: this.cfg.lr ?? defaultLr(optimizer, coder.numLatents),
          sf: { lrMax: -1, weightSum: 0, k: 0 },
          bestLoss: Infinity,
        });
      }
    }
    const first = this.slots[0]!;
    this.k = this.cfg.kDecaySteps > 0 ? currentK(0, this.cfg.kDecaySteps, initialK(first.coder.numLatents, first.coder.dIn), this.cfg.sae.k) : this.cfg.sae.k;
    this.initialised = true;
    const lrs = [...new Set(this.slots.map((s) => s.lr.toExponential(2)))].join(', ');
    this.log(`Training ${this.slots.length} coder(s) on ${this.hookpoints.length} hookpoint(s): ${this.hookpoints.join(', ')} (lr ${lrs})`);
  }

  /** Ask the loop to stop after the current step, save, and return (Ctrl-C). */
  requestStop(): void {
    this.stopRequested = true;
  }

  /** The rows [start, end) of batch `b` of this rank's contiguous shard. */
  private batchRows(b: number): [number, number] {
    const offset = this.rank * this.shardRows;
    const start = b * this.cfg.batchSize;
    return [offset + start, offset + Math.min(start + this.cfg.batchSize, this.shardRows)];
  }

  private async programIds(): Promise<{ hook: string; opt: string; loss?: string }> {
    const s = this.structure;
    const hook = await compileProgram(this.endToEnd ? P.replaceHookProgram(s) : P.fvuHookProgram(s), this.rt);
    const opt = await compileProgram(P.optimizerProgram(s, this.cfg.optimizer), this.rt);
    const loss = this.endToEnd ? await compileProgram(P.lossProgram(this.cfg.lossFn as 'ce' | 'kl'), this.rt) : undefined;
    return { hook, opt, ...(loss ? { loss } : {}) };
  }

  /** Learning-rate scalars for optimizer step `i` of a coder. */
  private lrArgs(slot: CoderSlot, i: number): { lr: number; lr_adam: number; ckp1: number; adam_step: number } {
    const total = this.totalSteps;
    switch (this.cfg.optimizer) {
      case 'signum':
        return { lr: slot.lr, lr_adam: 0, ckp1: scheduleFreeStep(slot.sf, slot.lr), adam_step: 0 };
      case 'adam':
        return { lr: slot.lr * linearWarmupDecay(i, this.cfg.lrWarmupSteps, total), lr_adam: 0, ckp1: 0, adam_step: i + 1 };
      case 'muon':
        return {
          lr: slot.lr * linearWarmupDecay(i, 0, total),
          lr_adam: slot.lr * linearWarmupDecay(i, this.cfg.lrWarmupSteps, total),
          ckp1: 0,
          adam_step: i + 1,
        };
    }
  }

  /** Run batches [from, to) and, when `step` is set, the optimizer step after them. */
  private async runBatches(ids: { hook: string; opt: string; loss?: string }, from: number, to: number, step: boolean, initBiases: boolean): Promise<StepResult> {
    const batches = Array.from({ length: to - from }, (_, j) => this.batchRows(from + j));
    // Dead-latent counters count the tokens each coder saw: the whole world batch when gathered.
    const tokens = batches.reduce((n, [a, b]) => n + (b - a) * this.dataset.ctxLen, 0) * (this.distributed ? this.worldSize : 1);
    const accSteps = this.cfg.gradAccSteps * (this.endToEnd ? 1 : this.cfg.microAccSteps);
    const deadThreshold = this.cfg.auxkAlpha > 0 ? this.cfg.deadFeatureThreshold : null;
    const hooks: Record<string, unknown>[] = this.slots.map((s) => ({
      key: s.name,
      module: s.hookpoint,
      program: ids.hook,
      replace: this.endToEnd,
      identity: this.endToEnd && this.cfg.sae.transcode,
      gather: this.distributed,
      args: {
        params: s.coder.params,
        state: s.state,
        k: this.k,
        dead_threshold: deadThreshold,
        init_biases: initBiases,
        ddp: this.ddp,
        ...(this.endToEnd ? {} : { auxk_alpha: this.cfg.auxkAlpha, acc_steps: accSteps, micro: this.cfg.microAccSteps, autocast: this.autocast }),
      },
    }));
    if (this.distributed) {
      // Every rank takes part in the all-gather of every hookpoint, owned or not.
      for (const h of this.hookpoints) if (!this.ownedHookpoints.includes(h)) hooks.push({ key: h, module: h, program: null, gather: true, args: {} });
    }
    const matrices = P.paramNames(this.structure).filter((n) => n !== 'encoder.bias' && n !== 'b_dec').length;
    const after = step
      ? this.slots.map((s, i) => ({
          key: s.name,
          program: ids.opt,
          args: {
            params: s.coder.params,
            state: s.state,
            tokens: this.pendingTokens + tokens,
            dead_threshold: this.cfg.deadFeatureThreshold,
            ddp: this.ddp,
            muon_offset: i * matrices,
            ...this.lrArgs(s, this.optimizerStep),
          },
        }))
      : [];
    const loss = ids.loss ? { key: this.cfg.lossFn, program: ids.loss, clean: this.cfg.lossFn === 'kl', args: { acc_steps: accSteps } } : null;
    const result = await this.rt.call<StepResult>('hooks.run', {
      model: this.model.model,
      rows: this.dataset.rows,
      batches,
      hooks,
      device: this.model.device,
      exclude_tokens: this.cfg.excludeTokens,
      loss,
      after,
      reduce_metrics: this.ddp ? 'mean' : this.distributed ? 'merge' : null,
      stop: this.stopRequested,
    });
    this.pendingTokens = step ? 0 : this.pendingTokens + tokens;
    if (result.stop === true) this.stopRequested = true;
    return result;
  }
  private pendingTokens = 0;

  /** Train over the dataset (from where a resumed state left off); saves at the end. */
  async fit(): Promise<{ steps: number; optimizerSteps: number; runDir: string; stopped: boolean }> {
    await this.init();
    const ids = await this.programIds();
    const total = this.totalSteps;
    if (this.cfg.logToWandb && this.isMain) {
      const run = await this.rt.call<{ ok: boolean; reason?: string }>('wandb.init', {
        project: 'sparsify',
        name: this.cfg.runName ?? null,
        config: this.options.runConfig ?? toSnake(this.cfg),
      });
      this.wandb = run.ok;
      if (!run.ok) this.log(`Not logging to wandb: ${run.reason}`);
    }
    if (this.globalStep === 0 && this.cfg.lossFn === 'ce' && this.isMain) {
      const clean = await this.rt.call<StepResult>('hooks.run', {
        model: this.model.model,
        rows: this.dataset.rows,
        batches: [this.batchRows(0)],
        hooks: [],
        device: this.model.device,
        loss: { key: 'clean', program: await compileProgram(P.cleanCeProgram(), this.rt), clean: false, args: {} },
      });
      this.log(`Initial CE loss: ${(clean.clean as Record<string, number>).ce!.toFixed(4)}`);
    }
    const sums = new Map<string, Record<string, number>>();
    let batchesInLog = 0;
    let sinceSave = new Map<string, { loss: number; n: number }>();
    while (this.globalStep < total && !this.stopRequested) {
      const end = Math.min(this.globalStep + this.cfg.gradAccSteps, total);
      const results: StepResult[] = [];
      let from = this.globalStep;
      if (this.globalStep === 0 && !this.cfg.finetune) {
        // The very first batch sets b_dec (and transcoders' encoder bias) from its activations.
        results.push(await this.runBatches(ids, 0, 1, end === 1, true));
        from = 1;
      }
      if (from < end) results.push(await this.runBatches(ids, from, end, true, false));
      const nBatches = end - this.globalStep;
      this.globalStep = end;
      this.optimizerStep += 1;
      // Tokens the whole world processed (every rank runs its own batch).
      this.tokensSeen += results.reduce((n, r) => n + r.tokens, 0) * this.worldSize;
      if (this.cfg.kDecaySteps > 0) {
        const first = this.slots[0]!.coder;
        this.k = currentK(this.globalStep, this.cfg.kDecaySteps, initialK(first.numLatents, first.dIn), this.cfg.sae.k);
      }
      // Metric sums of this step, and over the logging period.
      const stepSums = new Map<string, Record<string, number>>();
      batchesInLog += nBatches;
      for (const r of results) {
        for (const [key, value] of Object.entries(r)) {
          if (typeof value !== 'object') continue;
          for (const target of [stepSums, sums]) {
            const slot = target.get(key) ?? {};
            for (const [m, v] of Object.entries(value)) slot[m] = (slot[m] ?? 0) + v;
            target.set(key, slot);
          }
        }
      }
      const metrics = this.averages(sums, batchesInLog);
      const stepMetrics = this.averages(stepSums, nBatches);
      for (const s of this.slots) {
        const loss = this.endToEnd ? stepMetrics[this.cfg.lossFn]?.[this.cfg.lossFn] : stepMetrics[s.name]?.fvu;
        if (loss === undefined) continue;
        const acc = sinceSave.get(s.name) ?? { loss: 0, n: 0 };
        acc.loss += loss;
        acc.n += 1;
        sinceSave.set(s.name, acc);
      }
      const logged = this.optimizerStep % this.cfg.wandbLogFrequency === 0;
      if (logged) {
        if (this.isMain) await this.writeMetrics(metrics);
        sums.clear();
        batchesInLog = 0;
      }
      if (this.isMain) this.options.onStep?.({ step: this.globalStep, totalSteps: total, optimizerStep: this.optimizerStep, tokens: this.tokensSeen, metrics, logged, k: this.k });
      if (this.optimizerStep % this.cfg.saveEvery === 0 && this.globalStep < total) {
        await this.save();
        if (this.cfg.saveBest) await this.saveBest(sinceSave);
        sinceSave = new Map();
      }
    }
    await this.save();
    if (this.cfg.saveBest) await this.saveBest(sinceSave);
    if (this.wandb) await this.rt.call('wandb.finish', {});
    return { steps: this.globalStep, optimizerSteps: this.optimizerStep, runDir: this.runDir, stopped: this.stopRequested };
  }

  private averages(sums: Map<string, Record<string, number>>, batches: number): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    const steps = Math.max(1, Math.ceil(batches / this.cfg.gradAccSteps));
    const micro = this.endToEnd ? 1 : this.cfg.microAccSteps;
    for (const [key, values] of sums) {
      const avg: Record<string, number> = {};
      for (const [m, v] of Object.entries(values)) {
        // dead_pct is reported once per optimizer step; losses once per batch (and chunk).
        avg[m] = m === 'dead_pct' ? v / steps : v / (batches * (CHUNKED_METRICS.has(m) ? micro : 1));
      }
      out[key] = avg;
    }
    return out;
  }

  private async writeMetrics(metrics: Record<string, Record<string, number>>): Promise<void> {
    const line: Record<string, unknown> = { step: this.globalStep, optimizer_step: this.optimizerStep, tokens: this.tokensSeen, k: this.k, time: new Date().toISOString() };
    for (const [key, values] of Object.entries(metrics)) {
      for (const [m, v] of Object.entries(values)) {
        if (m === 'auxk' && this.cfg.auxkAlpha === 0) continue;
        if (m === 'multi_topk_fvu' && !this.cfg.sae.multiTopk) continue;
        line[key === this.cfg.lossFn ? m : `${m}/${key}`] = v;
      }
    }
    await mkdir(this.runDir, { recursive: true });
    await appendFile(join(this.runDir, 'metrics.jsonl'), `${JSON.stringify(line)}\n`);
    if (this.wandb) await this.rt.call('wandb.log', { metrics: line, step: this.optimizerStep });
  }

  // ------------------------------------------------------------------ checkpoints

  /** The parameters to save for a coder (schedule-free: x, leaving the training y as is). */
  private async savedParams(slot: CoderSlot): Promise<PyObject> {
    const { params } = await runProgram<{ params: PyObject }>(P.saveParamsProgram(this.structure, this.cfg.optimizer), { params: slot.coder.params, state: slot.state });
    return params;
  }

  private async writeCoder(dir: string, slot: CoderSlot): Promise<void> {
    await mkdir(dir, { recursive: true });
    await this.rt.call('safetensors.save', { path: join(dir, 'sae.safetensors'), tensors: await this.savedParams(slot), metadata: { format: 'pt' } });
    await writeFile(join(dir, 'cfg.json'), JSON.stringify(coderConfigToJson(slot.coder.cfg, slot.coder.dIn)));
  }

  /** The trainer-state file names of this rank (one set per rank with distributed modules). */
  private get stateFiles(): { json: string; tensors: string } {
    const suffix = this.distributed ? `-rank${this.rank}` : '';
    return { json: `state${suffix}.json`, tensors: `state${suffix}.safetensors` };
  }

  /** Staging tag: ranks that save into the same directory must not share a staging folder. */
  private get saveTag(): string {
    return this.distributed ? `-rank${this.rank}` : '';
  }

  /** Whether this rank writes checkpoints (data parallel: rank 0 only; distributed modules: every rank, its own coders). */
  private get saves(): boolean {
    return this.isMain || this.distributed;
  }

  /** Save coders, config and trainer state atomically into the run directory. */
  async save(): Promise<void> {
    if (!this.saves) return;
    const staging = await beginSave(this.runDir, this.saveTag);
    const entries: string[] = [];
    for (const slot of this.slots) {
      await this.writeCoder(join(staging, slot.name), slot);
      entries.push(slot.name);
    }
    const groups: Record<string, PyObject> = {};
    for (const slot of this.slots) {
      groups[`state:${slot.name}`] = slot.state;
      if (this.cfg.optimizer === 'signum') groups[`train:${slot.name}`] = slot.coder.params;
    }
    const files = this.stateFiles;
    await this.rt.call('state.save', { path: join(staging, files.tensors), groups });
    const state = {
      version: STATE_VERSION,
      world_size: this.worldSize,
      distribute_modules: this.distributed,
      global_step: this.globalStep,
      optimizer_step: this.optimizerStep,
      tokens_seen: this.tokensSeen,
      k: this.k,
      batch_size: this.cfg.batchSize,
      optimizer: this.cfg.optimizer,
      coders: Object.fromEntries(this.slots.map((s) => [s.name, { hookpoint: s.hookpoint, seed: s.seed, lr: s.lr, schedule_free: s.sf, best_loss: Number.isFinite(s.bestLoss) ? s.bestLoss : null }])),
    };
    await writeFile(join(staging, files.json), JSON.stringify(state, null, 2));
    entries.push(files.tensors, files.json);
    if (this.isMain) {
      await writeFile(join(staging, 'config.json'), JSON.stringify(this.options.runConfig ?? toSnake(this.cfg), null, 2));
      entries.push('config.json');
    }
    await commitSave(this.runDir, entries, this.saveTag);
  }

  /** Keep, per coder, the one with the lowest loss since the last save under best/. */
  private async saveBest(sinceSave: Map<string, { loss: number; n: number }>): Promise<void> {
    const better = this.slots.filter((s) => {
      const acc = sinceSave.get(s.name);
      if (!acc || acc.n === 0) return false;
      const loss = acc.loss / acc.n;
      if (loss < s.bestLoss) {
        s.bestLoss = loss;
        return true;
      }
      return false;
    });
    if (!better.length || !this.saves) return;
    const bestDir = join(this.runDir, 'best');
    const staging = await beginSave(bestDir, this.saveTag);
    for (const slot of better) await this.writeCoder(join(staging, slot.name), slot);
    await commitSave(bestDir, better.map((s) => s.name), this.saveTag);
  }

  /** Restore a saved trainer state (coders, optimizer state, counters, step) from `dir`. */
  async loadState(dir: string = this.runDir): Promise<void> {
    await this.init();
    if (this.isMain || this.distributed) {
      const recovered = await recover(dir);
      if (recovered !== 'none') this.log(`${dir}: an interrupted save was ${recovered === 'rolled-forward' ? 'completed' : 'discarded'}`);
    }
    // Data-parallel ranks read what rank 0 may just have repaired.
    if (this.worldSize > 1) await this.rt.call('dist.barrier', {});
    const statePath = join(dir, this.stateFiles.json);
    if (!existsSync(statePath)) throw new SparsifyError(`cannot resume: ${statePath} not found (no checkpoint in ${dir})`);
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as {
      version: number;
      world_size?: number;
      global_step: number;
      optimizer_step: number;
      tokens_seen: number;
      k: number;
      batch_size: number;
      optimizer: string;
      coders: Record<string, { schedule_free: ScheduleFreeState; best_loss: number | null }>;
    };
    const names = Object.keys(state.coders).sort();
    const mine = this.slots.map((s) => s.name).sort();
    if (names.join('\n') !== mine.join('\n')) {
      throw new ConfigError(`cannot resume from ${dir}: it trained ${names.join(', ')} but this run trains ${mine.join(', ')}`);
    }
    if ((state.world_size ?? 1) !== this.worldSize) throw new ConfigError(`cannot resume from ${dir}: it ran with world size ${state.world_size ?? 1}, this run has ${this.worldSize}; resume with the same world size`);
    if (state.optimizer !== this.cfg.optimizer) throw new ConfigError(`cannot resume from ${dir}: it used optimizer ${state.optimizer}, this run ${this.cfg.optimizer}`);
    if (state.batch_size !== this.cfg.batchSize) throw new ConfigError(`cannot resume from ${dir}: it used batch_size ${state.batch_size}, this run ${this.cfg.batchSize}`);
    const groups = await this.rt.call<Record<string, PyObject>>('state.load', { path: join(dir, this.stateFiles.tensors), device: this.model.device });
    for (const slot of this.slots) {
      const train = groups[`train:${slot.name}`];
      const loaded = train ? undefined : await SparseCoder.loadFromDisk(join(dir, slot.name), { device: this.model.device });
      await this.rt.call('bundle.copy_into', { dst: slot.coder.params, src: train ?? loaded!.params });
      await this.rt.call('bundle.update', { dst: slot.state, src: groups[`state:${slot.name}`] });
      const saved = state.coders[slot.name]!;
      Object.assign(slot.sf, saved.schedule_free);
      slot.bestLoss = saved.best_loss ?? Infinity;
    }
    this.globalStep = state.global_step;
    this.optimizerStep = state.optimizer_step;
    this.tokensSeen = state.tokens_seen;
    this.k = state.k;
    this.log(`Resumed from ${dir} at step ${this.globalStep}`);
  }

  /** Latent count of the first coder (for reports). */
  get numLatents(): number {
    const first = this.slots[0];
    return first ? numLatentsFor(first.coder.cfg, first.coder.dIn) : 0;
  }
}

/**
 * The hookpoints a config selects on a model (patterns, or the layer list, then the
 * stride); throws a ConfigError naming existing modules when a pattern matches none.
 */
export async function modelHookpoints(model: TrainableModel, cfg: Pick<TrainConfig, 'hookpoints' | 'layers' | 'layerStride'>): Promise<string[]> {
  const rt = model.model.runtime;
  const modules = await rt.call<ModuleInfo[]>('model.modules', { model: model.model });
  const { num_hidden_layers: numLayers } = await rt.call<{ num_hidden_layers: number | null }>('model.config', { model: model.model });
  return resolveHookpoints(modules, numLayers ?? undefined, cfg);
}

function toSnake(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toSnake);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [snakeCase(k), toSnake(v)]));
  }
  return value;
}
