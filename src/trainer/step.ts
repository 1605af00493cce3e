/**
 * What one training call runs: for every coder, its hook program bound to this step's
 * arguments (fvu: trains in the hook; ce/kl: replaces the module's output), the loss on the
 * logits for end-to-end training, and after the batches each coder's optimizer program with
 * this step's scalars (`stepPrograms`, pure assembly); and running it over a step's batches,
 * one bridge call (`StepRunner`).
 */
import type { Runtime } from '../bridge/runtime.js';
import type { BatchRows, HooksRunReply } from '../bridge/ops.js';
import type { TrainConfig } from '../config/train.js';
import type { TokenDataset } from '../data/dataset.js';
import { bind, runPasses, type BoundProgram, type Pass, type PassHook } from '../kernels/index.js';
import type { TrainableModel } from '../model/language-model.js';
import type { DataOrder } from './data-order.js';
import type { LossOptions } from '../math/sparse-coder.js';
import type { SparseBackward } from '../math/sparse-grads.js';
import { ConfigError } from '../config/errors.js';
import { MATRIX_PARAMS, paramNames, structureOf } from '../math/structure.js';
import { optimizer } from '../optimizers/index.js';
import { activation } from '../activations/index.js';
import { l0CoefficientOf } from '../config/train.js';
import * as P from './programs.js';
import { crossLayerGroups, crossLayerSlotName, type CoderSlot } from './slots.js';

/** What the step's programs depend on besides the slots. */
export interface StepContext {
  readonly cfg: TrainConfig;
  readonly slots: readonly CoderSlot[];
  /** Every hookpoint of the run, and those this rank's slots train. */
  readonly hookpoints: readonly string[];
  readonly ownedHookpoints: readonly string[];
  /** Data parallel: gradients and the bias initialisation's means are averaged over ranks. */
  readonly ddp: boolean;
  /** Distributed modules on the model: each hook sees every rank's activations, all-gathered. */
  readonly gather: boolean;
  /** The coders' forward under bf16 autocast. */
  readonly autocast: boolean;
  readonly losses: LossOptions;
  /** Tokens the whole world has trained on before this step. */
  readonly tokensSeen: number;
  /** Optimizer steps taken before this one, and what the learning-rate schedules run over. */
  readonly optimizerStep: number;
  readonly scheduleSteps: number;
}

/** A step's passes (one for fvu; the patched pass, after a clean one for kl, end to end) and its optimizer programs. */
export interface StepPrograms {
  passes: Pass[];
  after: { key: string; program: BoundProgram }[];
}

const endToEnd = (cfg: TrainConfig): boolean => cfg.lossFn !== 'fvu';

/** dictionary_learning's sparsity warm-up: the L0 loss's weight scale, min(step / warmup, 1) (1 without warm-up). */
export function sparsityWarmup(step: number, warmupSteps: number): number {
  return warmupSteps ? Math.min(step / warmupSteps, 1) : 1;
}

/** The key of a cross-layer transcoder's training hook (its metrics are split per slot: `crossLayerMetrics`): `cross_layer`, or `cross_layer/<configuration>` in a sweep. */
export const CROSS_LAYER_KEY = 'cross_layer';
const crossLayerKey = (group: readonly CoderSlot[]): string => (group[0]!.crossLayer!.dir ? `${CROSS_LAYER_KEY}/${group[0]!.crossLayer!.dir}` : CROSS_LAYER_KEY);

/**
 * Each cross-layer transcoder's hooks: each source layer but the last keeps its activations;
 * the last layer's hook trains the whole CLT on them.
 */
function crossLayerHooks(ctx: StepContext, initBiases: boolean): PassHook[] {
  return crossLayerGroups(ctx.slots).flatMap((slots, group) => {
    const { cfg } = ctx;
    const s = structureOf(slots[0]!.variant.sae);
    const variant = slots[0]!.variant;
    const n = slots.length;
    const args: Record<string, unknown> = {
      ...Object.fromEntries(slots.map((slot, i) => [`p${i}`, slot.coder.params])),
      ...Object.fromEntries(slots.map((slot, i) => [`state${i}`, slot.state])),
      k: slots[0]!.k,
      deadThreshold: variant.auxkAlpha > 0 && ctx.tokensSeen > variant.deadFeatureThreshold ? variant.deadFeatureThreshold : null,
      initBiases,
      ddp: ctx.ddp,
      thresholdBeta: ctx.optimizerStep > cfg.thresholdStartStep ? cfg.thresholdBeta : null,
      auxkAlpha: variant.auxkAlpha,
      accSteps: cfg.gradAccSteps,
      autocast: ctx.autocast,
      l0Coefficient: activation(variant.sae.activation).l0 ? l0CoefficientOf(variant) * sparsityWarmup(ctx.optimizerStep, cfg.sparsityWarmupSteps) : null,
      targetL0: variant.targetL0 ?? null,
    };
    if (slots[0]!.crossLayer!.shard) return crossLayerShardHooks(ctx, slots, group, args, initBiases);
    const keeps: PassHook[] = slots.slice(0, -1).map((slot, i) => ({ key: slot.name, module: slot.hookpoint, program: bind(P.crossLayerKeepHookProgram(s, i, group), { params: slot.coder.params, state: slot.state, initBiases, ddp: ctx.ddp }) }));
    const last = slots[n - 1]!;
    return [...keeps, { key: crossLayerKey(slots), module: last.hookpoint, program: bind(P.crossLayerTrainHookProgram(s, n, ctx.losses, group), args as never) }];
  });
}

/**
 * A CLT's hooks with distributed modules (see {@link P.crossLayerShardTrainHookProgram}):
 * the layers this rank owns keep their activations, and every rank's hook at the last layer
 * trains its share; every rank takes part in every layer's gather.
 */
function crossLayerShardHooks(ctx: StepContext, slots: readonly CoderSlot[], group: number, args: Record<string, unknown>, initBiases: boolean): PassHook[] {
  const { clt, shard } = slots[0]!.crossLayer!;
  const s = structureOf(slots[0]!.variant.sae);
  const layers = clt.layers;
  const n = layers.length;
  const hooks: PassHook[] = [];
  for (const [j, layer] of layers.slice(0, -1).entries()) {
    const slot = slots.find((x) => x.crossLayer!.source === j);
    if (slot) hooks.push({ key: slot.name, module: layer, program: bind(P.crossLayerKeepHookProgram(s, j, group), { params: slot.coder.params, state: slot.state, initBiases, ddp: false }), gather: ctx.gather });
    else if (ctx.gather) hooks.push({ key: `${crossLayerKey(slots)}/${layer}`, module: layer, program: null, gather: true });
  }
  hooks.push({ key: crossLayerKey(slots), module: layers[n - 1]!, program: bind(P.crossLayerShardTrainHookProgram(s, n, shard!, ctx.losses, group), args as never), gather: ctx.gather });
  return hooks;
}

/** A cross-layer step's metrics as per-slot ones: each CLT's target i fvu and source i AuxK under its slot i's name. */
export function crossLayerMetrics(reply: HooksRunReply, slots: readonly CoderSlot[]): HooksRunReply {
  const metrics = { ...reply.metrics };
  for (const group of crossLayerGroups(slots)) {
    const key = crossLayerKey(group);
    const m = metrics[key];
    if (!m) continue;
    delete metrics[key];
    // Every layer's, with distributed modules too (each rank's merged into every rank's reply).
    const { clt, dir } = group[0]!.crossLayer!;
    clt.layers.forEach((layer, i) => {
      if (m[`fvu_${i}`] === undefined) return;
      const name = crossLayerSlotName(dir, layer);
      const l0: Record<string, number> = m[`l0_${i}`] !== undefined ? { l0: m[`l0_${i}`]!, sparsity_loss: m[`sparsity_loss_${i}`]! } : {};
      const before = metrics[name];
      // In layer order (merged ranks' metrics arrive in rank order).
      delete metrics[name];
      metrics[name] = { ...before, fvu: m[`fvu_${i}`]!, auxk: m[`auxk_${i}`]!, multi_topk_fvu: 0, ...l0 };
    });
  }
  return { ...reply, metrics };
}

/** The coders' hooks for a call: `initBiases` on the run's very first batch. */
function coderHooks(ctx: StepContext, initBiases: boolean): PassHook[] {
  const { cfg } = ctx;
  if (cfg.crossLayer) return crossLayerHooks(ctx, initBiases);
  const e2e = endToEnd(cfg);
  const accSteps = cfg.gradAccSteps * (e2e ? 1 : cfg.microAccSteps);
  const hooks: PassHook[] = ctx.slots.map((s) => {
    const common = {
      params: s.coder.params,
      state: s.state,
      k: s.k,
      // No latent can be dead before the threshold's worth of tokens has been seen (the counters
      // never exceed the tokens seen): no mask then, which saves the AuxK branch's host sync.
      deadThreshold: s.variant.auxkAlpha > 0 && ctx.tokensSeen > s.variant.deadFeatureThreshold ? s.variant.deadFeatureThreshold : null,
      initBiases,
      ddp: ctx.ddp,
      // dictionary_learning moves it from the step after threshold_start_step (its steps count from 0, as optimizerStep does).
      thresholdBeta: ctx.optimizerStep > cfg.thresholdStartStep ? cfg.thresholdBeta : null,
      l0Coefficient: activation(s.variant.sae.activation).l0 ? l0CoefficientOf(s.variant) * sparsityWarmup(ctx.optimizerStep, cfg.sparsityWarmupSteps) : null,
      targetL0: s.variant.targetL0 ?? null,
      accSteps,
    };
    const structure = structureOf(s.variant.sae);
    const program = e2e
      ? bind(P.replaceHookProgram(structure, ctx.losses), common)
      : bind(P.fvuHookProgram(structure, ctx.losses), { ...common, auxkAlpha: s.variant.auxkAlpha, micro: cfg.microAccSteps, autocast: ctx.autocast });
    return { key: s.name, module: s.hookpoint, program, replace: e2e, identity: e2e && s.variant.sae.transcode, gather: ctx.gather };
  });
  // Every rank takes part in the all-gather of every hookpoint, owned or not.
  if (ctx.gather) for (const h of ctx.hookpoints) if (!ctx.ownedHookpoints.includes(h)) hooks.push({ key: h, module: h, program: null, gather: true });
  return hooks;
}

/** Each coder's optimizer program with this step's scalars (Muon spreads its matrices over the ranks, counted across the coders). */
function optimizerSteps(ctx: StepContext): StepPrograms['after'] {
  let matrixOffset = 0;
  return ctx.slots.map((s) => {
    const opt = optimizer(s.variant.optimizer);
    const structure = structureOf(s.variant.sae);
    const scalars = opt.schedule({ lr: s.lr, step: ctx.optimizerStep, totalSteps: ctx.scheduleSteps, warmupSteps: s.variant.lrWarmupSteps, matrixOffset }, s.host);
    matrixOffset += paramNames(structure).filter((n) => MATRIX_PARAMS.has(n)).length;
    const program = bind(P.optimizerProgram(structure, s.variant.optimizer), { params: s.coder.params, state: s.state, deadThreshold: s.variant.deadFeatureThreshold, ddp: ctx.ddp, ...scalars });
    return { key: s.name, program };
  });
}

/**
 * The programs of one training call over some batches: `initBiases` on the run's first
 * batch, `step` when an optimizer step follows the batches.
 */
export function stepPrograms(ctx: StepContext, options: { initBiases: boolean; step: boolean }): StepPrograms {
  const { cfg } = ctx;
  const hooks = coderHooks(ctx, options.initBiases);
  const after = options.step ? optimizerSteps(ctx) : [];
  if (!endToEnd(cfg)) return { passes: [{ hooks }], after };
  // ce/kl: the hooks patch the model's output and the loss on the logits trains through it
  // (kl after a clean pass keeps the clean logits).
  const lossFn = cfg.lossFn as 'ce' | 'kl';
  const loss = { key: lossFn, program: bind(P.lossProgram(lossFn), { accSteps: cfg.gradAccSteps }) };
  const clean: Pass[] = lossFn === 'kl' ? [{ hooks: [], logits: { key: 'clean', program: bind(P.keepCleanLogitsProgram(), {}) } }] : [];
  return { passes: [...clean, { hooks, logits: loss, grad: true }], after };
}

/** The pass that measures the model's own CE on a batch (printed before ce training). */
function cleanCePass(): Pass {
  return { hooks: [], logits: { key: 'clean', program: bind(P.cleanCeProgram(), {}) } };
}

/** Where a run stands that its steps depend on (the trainer). */
export interface RunPlace {
  readonly cfg: TrainConfig;
  readonly model: TrainableModel;
  readonly dataset: TokenDataset;
  readonly order: DataOrder;
  readonly slots: readonly CoderSlot[];
  readonly hookpoints: readonly string[];
  readonly ownedHookpoints: readonly string[];
  readonly rank: number;
  readonly worldSize: number;
  readonly distributeModules: boolean;
}

/** Runs a run's training calls: each over some batches, one `hooks.run` bridge call. */
export class StepRunner {
  constructor(
    private readonly run: RunPlace,
    private readonly rt: Runtime,
  ) {}

  /** The weight-gradient kernels: `auto` is `gemm` on CUDA, where it is faster, and the reference's elsewhere. */
  get sparseBackward(): SparseBackward {
    const choice = this.run.cfg.sparseBackward;
    const cuda = this.run.model.device.startsWith('cuda');
    // Triton runs on CUDA; its interpreter (TRITON_INTERPRET=1) runs the kernels on CPU tensors, for tests.
    if (choice === 'segment' && !cuda && !process.env.TRITON_INTERPRET) throw new ConfigError(`--sparse_backward segment runs Triton kernels on CUDA; this run is on ${this.run.model.device} (use index_add or gemm, or TRITON_INTERPRET=1 to run them slowly on CPU)`);
    return choice === 'auto' ? (cuda ? 'gemm' : 'index_add') : choice;
  }

  /** Data parallel: every rank holds every coder; gradients are averaged. */
  get ddp(): boolean {
    return this.run.worldSize > 1 && !this.run.cfg.distributeModules;
  }

  /**
   * From a cache with distributed modules, every rank reads every rank's rows of its own
   * hookpoints (reading is cheaper than gathering activations over the network): the batch
   * is the ranks' batches in rank order, as the all-gather would have made it.
   */
  get readsAllRanks(): boolean {
    return this.run.distributeModules && this.run.model.cached !== undefined;
  }

  /**
   * Batches [from, to) and, with `step`, the optimizer step after them; `initBiases` on the
   * run's first batch. `stop`: this rank asks the ranks to stop.
   */
  async batches(from: number, to: number, at: { step: boolean; initBiases: boolean; tokensSeen: number; optimizerStep: number; stop: boolean }): Promise<HooksRunReply> {
    const { run } = this;
    const batches = Array.from({ length: to - from }, (_, j): BatchRows => (this.readsAllRanks ? run.order.allRanks(from + j) : run.order.batch(from + j, run.rank)));
    const { passes, after } = stepPrograms(
      {
        cfg: run.cfg,
        slots: run.slots,
        hookpoints: run.hookpoints,
        ownedHookpoints: run.ownedHookpoints,
        ddp: this.ddp,
        gather: run.distributeModules && !this.readsAllRanks,
        autocast: run.model.device.startsWith('cuda') && this.rt.info.bf16,
        losses: { auxkBias: !run.cfg.auxkNoBias, sparseBackward: this.sparseBackward, ...(run.cfg.crossLayer ? { crossLayerLoss: run.cfg.crossLayerLoss } : {}) },
        tokensSeen: at.tokensSeen,
        optimizerStep: at.optimizerStep,
        scheduleSteps: run.order.scheduleSteps,
      },
      at,
    );
    const reply = await runPasses({
      model: run.model.model,
      rows: run.dataset.rows,
      batches,
      passes,
      device: run.model.device,
      excludeTokens: run.cfg.excludeTokens,
      after,
      reduceMetrics: this.ddp ? 'mean' : run.distributeModules ? 'merge' : null,
      stop: at.stop,
      vocabSize: run.model.vocabSize,
    });
    return run.cfg.crossLayer ? crossLayerMetrics(reply, run.slots) : reply;
  }

  /** The model's own CE on the first batch (printed before ce training, as the reference does). */
  async cleanCe(): Promise<number> {
    const { run } = this;
    const clean = await runPasses({ model: run.model.model, rows: run.dataset.rows, batches: [run.order.batch(0, run.rank)], passes: [cleanCePass()], device: run.model.device });
    return clean.metrics.clean!.ce!;
  }
}
