/**
 * The trainer's programs: the per-hookpoint step (run inside the model's forward hook), the
 * optimizer step per coder, the end-to-end losses, and state set-up. Each is built once per
 * structure and compiled once; the hot loop runs them all through one `hooks.run` call. They
 * follow the reference's `Trainer.fit` (sparsify/trainer.py) step by step.
 */
import { HOOK_INPUTS, In, LOGITS_INPUTS, cachedProgram, defineProgram, withScalars, type ProgramBuilder, type SymBundle, type SymScalar, type SymTensor } from '../kernels/index.js';
import * as sc from '../math/sparse-coder.js';
import { crossLayerEncode, crossLayerForward, crossLayerReconLoss, crossLayerShardLosses } from '../math/cross-layer.js';
import { MATRIX_PARAMS, bufferNames, paramNames, structureTag as tag, type CoderParamName, type CoderParams, type CoderStructure } from '../math/structure.js';
import { activation, asRows } from '../activations/index.js';
import { optimizer as optimizerOf, type OptimizerName } from '../optimizers/index.js';

/** What every hook program of a coder takes: its parameters, state and k, and the step's flags. */
const CODER_HOOK_INPUTS = {
  ...HOOK_INPUTS,
  params: In.bundle<CoderParamName>(),
  state: In.bundle(),
  k: In.scalar(),
  /** Tokens without firing after which a latent is dead; null: no dead mask (no AuxK). */
  deadThreshold: In.scalar<number | null>(),
  /** The first batch: set b_dec (and a transcoder's encoder bias) from its activations. */
  initBiases: In.scalar<boolean>(),
  /** Data parallel: the bias initialisation's means (and a learned threshold's statistic) are all-reduced. */
  ddp: In.scalar<boolean>(),
  /** A learned inference threshold's beta when it moves with this batch (after threshold_start_step steps); null: it stays. */
  thresholdBeta: In.scalar<number | null>(),
  /** The weight of the L0 loss of an activation that trains towards one (jumprelu), warm-up included; null: none. */
  l0Coefficient: In.scalar<number | null>(),
  /** Its target: the loss is coef * (l0 / target - 1)^2; null: coef * l0. */
  targetL0: In.scalar<number | null>(),
  /** Losses are divided by this (gradient accumulation, times micro-batch chunks for fvu). */
  accSteps: In.scalar(),
};

/**
 * Flatten the hook's tensors to [tokens, D], drop excluded tokens, initialise biases on the
 * first step, and keep decoder rows at unit norm (SAE), as the reference's hook does.
 */
function prepareActivations(g: ProgramBuilder, params: CoderParams, s: CoderStructure, io: { inputs: SymTensor; outputs: SymTensor; mask: SymTensor; initBiases: SymScalar; ddp: SymScalar }) {
  const { inputs, outputs, mask, initBiases, ddp } = io;
  const yAll = outputs.flatten(0, 1).named('all_outputs');
  const xAll = s.transcode ? inputs.flatten(0, 1).named('all_inputs') : yAll;
  const y0 = yAll.rowsWhere(mask).named('kept_outputs');
  const x0 = s.transcode ? xAll.rowsWhere(mask).named('kept_inputs') : y0;
  const wEnc = params.get('encoder.weight');
  // First step: centre the pre-activations (b_dec = mean target; transcoders also set the
  // encoder bias to -mean input @ W^T). Data-parallel ranks agree on the means (all-reduced);
  // a gathered batch needs no reduce.
  g.when(initBiases, () =>
    g.noGrad(() => {
      if (s.transcode) {
        const xMean = x0.mean(0).named('input_mean');
        g.when(ddp, () => g.allReduce_(xMean, 'mean'));
        const mean = xMean.typeAs(wEnc);
        params.get('encoder.bias').copy_(mean.neg().matmul(wEnc.mT));
      }
      const yMean = y0.mean(0).named('output_mean');
      g.when(ddp, () => g.allReduce_(yMean, 'mean'));
      params.get('b_dec').copy_(yMean.typeAs(wEnc));
    }),
  );
  if (s.normalizeDecoder && !s.transcode) sc.setDecoderNormToUnitNorm(g, params);
  const x = x0.typeAs(wEnc).named('x');
  return { x, y: s.transcode ? y0.typeAs(wEnc).named('y') : x, yAll };
}

/**
 * Count the tokens this step trains on for the dead-latent counters: those not excluded (the
 * reference sums the token mask), all of them without a mask.
 */
function countTokens(g: ProgramBuilder, state: SymBundle, mask: SymTensor, yAll: SymTensor): void {
  g.noGrad(() => {
    const stepTokens = state.get('step_tokens');
    g.when(
      g.isNone(mask),
      () => stepTokens.add_(yAll.size(0)),
      () => stepTokens.add_(mask.sum()),
    );
  });
}

type CoderHookSyms = {
  inputs: SymTensor;
  outputs: SymTensor;
  mask: SymTensor;
  params: CoderParams;
  state: SymBundle;
  k: SymScalar;
  deadThreshold: SymScalar;
  initBiases: SymScalar;
  ddp: SymScalar;
  thresholdBeta: SymScalar;
  l0Coefficient: SymScalar;
  targetL0: SymScalar;
};

/**
 * The L0 loss of an activation that trains towards an L0 (dictionary_learning's JumpReLU
 * sparsity loss): coef * (l0 / target - 1)^2 with a target, else coef * l0; none for others.
 */
function sparsityLoss(g: ProgramBuilder, io: CoderHookSyms, out: sc.TrainingForward): SymTensor | undefined {
  const l0 = out.l0;
  if (!l0) return undefined;
  const { sparsity } = g.ifElse(
    g.isNone(io.targetL0),
    () => ({ sparsity: l0.mul(io.l0Coefficient) }),
    () => ({ sparsity: l0.div(io.targetL0).sub(1).pow(2).mul(io.l0Coefficient) }),
  );
  return sparsity.named('sparsity_loss');
}

/** After a forward: mark the fired latents and move a learned inference threshold. */
function afterForward(g: ProgramBuilder, s: CoderStructure, io: CoderHookSyms, out: sc.TrainingForward): void {
  markFired(g, io.state, out, s);
  if (s.inferenceThreshold) {
    g.when(g.isNone(io.thresholdBeta).not(), () => sc.updateThreshold(g, io.params, out.kept, s, { beta: io.thresholdBeta, ddp: io.ddp }));
  }
}

/** What every hook program starts from: the activations, the token count, the dead mask. */
function hookStart(g: ProgramBuilder, s: CoderStructure, io: CoderHookSyms) {
  const prepared = prepareActivations(g, io.params, s, io);
  countTokens(g, io.state, io.mask, prepared.yAll);
  // Latents that have not fired for dead_threshold tokens; no mask (no AuxK) without a threshold.
  const { deadMask } = g.ifElse(
    g.isNone(io.deadThreshold),
    () => ({ deadMask: g.none() }),
    () => ({ deadMask: io.state.get('tokens_since_fired').gt(io.deadThreshold) }),
  );
  return { deadMask, ...prepared };
}

/**
 * Mark the latents a step selected, for the dead-latent counters: every slot of the
 * selection (the reference's rule), or only those above zero for a padded one.
 */
function markFired(g: ProgramBuilder, state: SymBundle, out: { latentIndices: SymTensor; latentActs: SymTensor }, s: CoderStructure): void {
  g.noGrad(() => {
    const didFire = state.get('did_fire');
    if (!activation(s.activation).padded) {
      // index_fill_, not did_fire[idx] = True: the latter copies True from the host, a sync on CUDA.
      didFire.indexFill_(0, out.latentIndices.flatten(), true);
      return;
    }
    const fired = g.zerosLike(state.get('tokens_since_fired')).named('fired_count');
    fired.indexAdd_(0, out.latentIndices.flatten(), out.latentActs.gt(0).flatten().to('int64'));
    didFire.maskedFill_(fired.gt(0), true);
  });
}

/**
 * Local (fvu) training step for one coder, inside its module's forward hook: forward,
 * loss = fvu (or the Matryoshka loss) + auxk_alpha * auxk + multi_topk_fvu / 8 (+ an L0 loss), backward divided by acc_steps, in
 * `micro` chunks; marks fired latents; returns metric sums.
 */
export function fvuHookProgram(s: CoderStructure, losses: sc.LossOptions = sc.REFERENCE_LOSSES) {
  return cachedProgram(`fvu_hook:${tag(s)}${sc.lossTag(losses)}`, () =>
    defineProgram(
      `train_fvu_hook_${tag(s)}${sc.lossTag(losses)}`,
      {
        ...CODER_HOOK_INPUTS,
        auxkAlpha: In.scalar(),
        /** Chunks the batch is split into for the coder's forward and backward. */
        micro: In.scalar(),
        /** bf16 autocast for the coder's forward. */
        autocast: In.scalar<boolean>(),
      },
      (g, io) => {
        const { params, k, auxkAlpha, accSteps, micro, autocast } = io;
        const { deadMask, x, y } = hookStart(g, s, io);
        const fvuSum = x.newZeros([]).named('fvu_sum');
        const auxkSum = x.newZeros([]).named('auxk_sum');
        const mtkSum = x.newZeros([]).named('multi_topk_fvu_sum');
        const trainsL0 = activation(s.activation).l0 !== undefined;
        const l0Sum = x.newZeros([]).named('l0_sum');
        const sparsitySum = x.newZeros([]).named('sparsity_sum');
        const matryoshkaSum = x.newZeros([]).named('matryoshka_sum');
        g.forRange(micro, (i) => {
          const xc = x.chunkAt(micro, i).named('x_chunk');
          const yc = s.transcode ? y.chunkAt(micro, i).named('y_chunk') : xc;
          // As the reference: the coder's forward under bf16 autocast on GPUs that support it.
          let out!: sc.TrainingForward;
          g.autocast(autocast, () => {
            out = sc.forward(g, params, xc, yc, deadMask, k, s, losses);
          });
          afterForward(g, s, io, out);
          let loss = out.reconstructionLoss.add(out.auxkLoss.mul(auxkAlpha)).add(out.multiTopkFvu.div(8)).named('loss');
          if (s.matryoshka) matryoshkaSum.add_(out.reconstructionLoss.detach());
          const sparsity = sparsityLoss(g, io, out);
          if (sparsity) {
            loss = loss.add(sparsity).named('loss');
            l0Sum.add_(out.l0!.detach());
            sparsitySum.add_(sparsity.detach());
          }
          loss.div(accSteps).backward();
          fvuSum.add_(out.fvu.detach());
          auxkSum.add_(out.auxkLoss.detach());
          mtkSum.add_(out.multiTopkFvu.detach());
        });
        return { metrics: { fvu: fvuSum, auxk: auxkSum, multi_topk_fvu: mtkSum, ...(trainsL0 ? { l0: l0Sum, sparsity_loss: sparsitySum } : {}), ...(s.matryoshka ? { matryoshka_loss: matryoshkaSum } : {}) } };
      },
      { grad: true },
    ),
  );
}

/**
 * End-to-end (ce/kl) hook: replace the module's output with the coder's reconstruction
 * (excluded tokens keep the original); gradients arrive from the model's loss.
 */
export function replaceHookProgram(s: CoderStructure, losses: sc.LossOptions = sc.REFERENCE_LOSSES) {
  return cachedProgram(`replace_hook:${tag(s)}${sc.lossTag(losses)}`, () =>
    defineProgram(
      `train_replace_hook_${tag(s)}${sc.lossTag(losses)}`,
      CODER_HOOK_INPUTS,
      (g, io) => {
        const { params, k, mask, outputs, accSteps } = io;
        const { deadMask, x, y, yAll } = hookStart(g, s, io);
        const out = sc.forward(g, params, x, y, deadMask, k, s, losses);
        afterForward(g, s, io, out);
        // An L0 loss trains the coder's own parameters directly: its backward runs here, the
        // model's loss reaches the rest through the patched output.
        const sparsity = sparsityLoss(g, io, out);
        if (sparsity) sparsity.div(accSteps).backward();
        const recon = out.saeOut.typeAs(outputs).named('reconstruction');
        const { patched } = g.ifElse(
          g.isNone(mask),
          () => ({ patched: recon }),
          () => ({ patched: yAll.detach().clone().indexPut(mask, recon) }),
        );
        return {
          output: patched.reshapeAs(outputs),
          metrics: { fvu: out.fvu.detach(), auxk: out.auxkLoss.detach(), multi_topk_fvu: out.multiTopkFvu.detach(), ...(sparsity ? { l0: out.l0!.detach(), sparsity_loss: sparsity.detach() } : {}) },
        };
      },
      { grad: true },
    ),
  );
}

/** The LM's next-token cross-entropy: logits of positions 0..T-2 against tokens 1..T-1. */
function nextTokenCe(g: ProgramBuilder, logits: SymTensor, inputIds: SymTensor): SymTensor {
  const shifted = logits.slice(1, null, -1).float().flatten(0, 1).named('shifted_logits');
  const labels = inputIds.slice(1, 1, null).flatten().named('labels');
  return g.crossEntropy(shifted, labels);
}

/** kl's first pass: the clean logits (no hooks, no grad), kept for the patched pass. */
export function keepCleanLogitsProgram() {
  return cachedProgram('keep_clean_logits', () => defineProgram('train_keep_clean_logits', LOGITS_INPUTS, (_g, { logits }) => ({ keep: { clean_logits: logits } })));
}

/** ce: the LM's next-token cross-entropy; kl: -sum(clean_probs * patched_logprobs), token mean. */
export function lossProgram(kind: 'ce' | 'kl') {
  return cachedProgram(`loss:${kind}`, () =>
    defineProgram(
      `train_loss_${kind}`,
      { ...LOGITS_INPUTS, accSteps: In.scalar() },
      (_g, { logits, inputIds, context, accSteps }) => {
        let loss: SymTensor;
        if (kind === 'ce') {
          loss = nextTokenCe(_g, logits, inputIds);
        } else {
          const clean = context.get('clean_logits');
          const cleanProbs = clean.float().softmax(-1).named('clean_probs');
          const dirty = logits.float().logSoftmax(-1).named('dirty_logprobs');
          loss = cleanProbs.mul(dirty).sum(-1).neg().mean();
        }
        loss.named(kind).div(accSteps).backward();
        return { metrics: { [kind]: loss.detach() } as Record<'ce' | 'kl', SymTensor> };
      },
      { grad: true },
    ),
  );
}

/** The model's own CE on a batch (no hooks), printed before ce training. */
export function cleanCeProgram() {
  return cachedProgram('clean_ce', () => defineProgram('train_clean_ce', LOGITS_INPUTS, (g, { logits, inputIds }) => ({ metrics: { ce: nextTokenCe(g, logits, inputIds) } })));
}

/** Optimizer state and dead-latent counters for one coder. */
export function stateInitProgram(s: CoderStructure, name: OptimizerName) {
  const opt = optimizerOf(name);
  return cachedProgram(`state_init:${name}:${tag(s)}`, () =>
    defineProgram(`train_state_init_${name}_${tag(s)}`, { params: In.bundle<CoderParamName>() }, (g, { params }) => {
      const wEnc = params.get('encoder.weight');
      const entries: Record<string, SymTensor> = {
        tokens_since_fired: g.zeros([wEnc.size(0)], { dtype: 'int64', device: wEnc }).named('tokens_since_fired'),
        did_fire: g.zeros([wEnc.size(0)], { dtype: 'bool', device: wEnc }).named('did_fire'),
        // Tokens trained on since the last optimizer step (kept on the device: no sync).
        step_tokens: g.zeros([], { dtype: 'int64', device: wEnc }).named('step_tokens'),
      };
      for (const p of paramNames(s)) {
        for (const slot of opt.slots({ name: p, matrix: MATRIX_PARAMS.has(p) })) entries[`${slot}.${p}`] = g.zerosLike(params.get(p).detach());
      }
      return { state: g.bundle(entries).named('state') };
    }),
  );
}

/**
 * One optimizer step for one coder: project out the decoder-parallel gradient (SAE with
 * unit-norm decoder), the optimizer's update of each parameter that has a gradient, clear
 * gradients, update dead-latent counters. The optimizer's step scalars are inputs too.
 */
export function optimizerProgram(s: CoderStructure, name: OptimizerName) {
  const opt = optimizerOf(name);
  return cachedProgram(`optimizer:${name}:${tag(s)}`, () =>
    defineProgram(
      `train_optimizer_${name}_${tag(s)}`,
      withScalars({ params: In.bundle<CoderParamName>(), state: In.bundle(), deadThreshold: In.scalar(), ddp: In.scalar<boolean>() }, opt.scalars),
      (g, inputs) => {
        const { params, state, deadThreshold, ddp } = inputs;
        const stepScalars = Object.fromEntries(opt.scalars.map((n) => [n, (inputs as unknown as Record<string, SymScalar>)[n]!]));
        // Data parallel: average gradients (as DDP does) and share which latents fired.
        g.when(ddp, () => {
          g.noGrad(() => {
            g.allReduceGrads_(paramNames(s).map((n) => params.get(n)));
            g.allReduce_(state.get('did_fire'), 'max');
          });
        });
        if (s.normalizeDecoder && !s.transcode) sc.removeGradientParallelToDecoderDirections(g, params);
        let matrixIndex = 0;
        g.noGrad(() => {
          for (const p of paramNames(s)) {
            const param = params.get(p);
            const matrix = MATRIX_PARAMS.has(p);
            const index = matrix ? matrixIndex++ : -1;
            g.when(g.isNone(param.grad).not(), () => {
              opt.update(g, { p: param, name: p, matrix, state, scalars: stepScalars, matrixIndex: index });
              param.clearGrad();
            });
          }
          // Dead-latent counters: every latent ages by the step's tokens; those that fired restart.
          const counts = state.get('tokens_since_fired');
          const didFire = state.get('did_fire');
          const stepTokens = state.get('step_tokens');
          counts.add_(stepTokens);
          counts.maskedFill_(didFire, 0); // not counts[did_fire] = 0: no host sync on CUDA
          didFire.zero_();
          stepTokens.zero_();
        });
        const deadPct = state.get('tokens_since_fired').gt(deadThreshold).float().mean().named('dead_pct');
        return { metrics: { dead_pct: deadPct } };
      },
    ),
  );
}

/** The parameters to save: as the optimizer saves them (schedule-free's x, y untouched), else as they are; buffers as they are. */
export function saveParamsProgram(s: CoderStructure, name: OptimizerName) {
  const opt = optimizerOf(name);
  return cachedProgram(`save_params:${name}:${tag(s)}`, () =>
    defineProgram(`train_save_params_${name}_${tag(s)}`, { params: In.bundle<CoderParamName>(), state: In.bundle() }, (g, { params, state }) => {
      const entries = {} as Record<CoderParamName, SymTensor>;
      for (const p of paramNames(s)) entries[p] = opt.saved ? opt.saved(g, params.get(p), p, state) : params.get(p).detach();
      for (const b of bufferNames(s)) entries[b] = params.get(b).detach();
      return { params: g.bundle(entries).named('saved_params') };
    }),
  );
}

/** Where source i of the run's CLT number `group` (a sweep trains one per configuration) keeps its activations in a batch's context. */
const cltKey = (what: 'x' | 'y', source: number, group: number): string => `clt${group}_${what}_${source}`;

/**
 * A cross-layer transcoder's hook at source layer i < n - 1: prepare the layer's activations
 * (the first batch sets its biases, as a transcoder's), count its tokens, and keep x_i and y_i
 * for the last layer's hook, which trains the whole CLT.
 */
export function crossLayerKeepHookProgram(s: CoderStructure, source: number, group = 0) {
  return cachedProgram(`clt_keep_hook:${tag(s)}:${source}:${group}`, () =>
    defineProgram(`train_clt_keep_${tag(s)}_${source}_g${group}`, { ...HOOK_INPUTS, params: In.bundle<CoderParamName>(), state: In.bundle(), initBiases: In.scalar<boolean>(), ddp: In.scalar<boolean>() }, (g, io) => {
      const { x, y, yAll } = prepareActivations(g, io.params, s, io);
      countTokens(g, io.state, io.mask, yAll);
      return { keep: { [cltKey('x', source, group)]: x, [cltKey('y', source, group)]: y }, metrics: {} };
    }),
  );
}

/**
 * A cross-layer transcoder's training step, in the last source layer's hook (every earlier
 * layer's x and y are in the batch's context by then): the CLT's forward, loss = the summed
 * fvu + auxk_alpha * the summed AuxK, backward divided by acc_steps; each source marks its
 * fired latents. Metrics `fvu_i` and `auxk_i` per target (the step splits them per slot).
 */
const sumOf = (ts: readonly SymTensor[]): SymTensor => ts.slice(1).reduce((a, b) => a.add(b), ts[0]!);

/** Each source's dead-latent mask (tokens without firing above the threshold), none without a threshold. */
function crossLayerDeadMasks(g: ProgramBuilder, states: readonly SymBundle[], deadThreshold: SymScalar): SymTensor[] {
  return states.map((state) => g.ifElse(g.isNone(deadThreshold), () => ({ dm: g.none() }), () => ({ dm: state.get('tokens_since_fired').gt(deadThreshold) })).dm);
}

/** A CLT step's metrics for the layers `layers` (their global indices, one per entry of the losses): `fvu_j`, `auxk_j`, and `l0_j`, `sparsity_loss_j` where trained. */
function crossLayerStepMetrics(layers: readonly number[], out: { fvu: readonly SymTensor[]; auxkLoss: readonly SymTensor[] }, l0: readonly (SymTensor | undefined)[], sparsity: readonly (SymTensor | undefined)[]): Record<string, SymTensor> {
  const metrics: Record<string, SymTensor> = {};
  layers.forEach((j, t) => {
    metrics[`fvu_${j}`] = out.fvu[t]!.detach();
    metrics[`auxk_${j}`] = out.auxkLoss[t]!.detach();
    if (l0[t]) metrics[`l0_${j}`] = l0[t]!.detach();
    if (sparsity[t]) metrics[`sparsity_loss_${j}`] = sparsity[t]!.detach();
  });
  return metrics;
}

/** A CLT training hook's inputs: the hook's, `p{t}` and `state{t}` for each of its `sources` sources, and the step's scalars. */
function crossLayerStepSignature(sources: number) {
  const each = (prefix: string, spec: () => ReturnType<typeof In.bundle>): Record<string, ReturnType<typeof In.bundle>> => Object.fromEntries(Array.from({ length: sources }, (_, i) => [`${prefix}${i}`, spec()]));
  return {
    ...HOOK_INPUTS,
    ...each('p', () => In.bundle<CoderParamName>()),
    ...each('state', () => In.bundle()),
    k: In.scalar(),
    deadThreshold: In.scalar<number | null>(),
    initBiases: In.scalar<boolean>(),
    ddp: In.scalar<boolean>(),
    thresholdBeta: In.scalar<number | null>(),
    auxkAlpha: In.scalar(),
    accSteps: In.scalar(),
    autocast: In.scalar<boolean>(),
    l0Coefficient: In.scalar<number | null>(),
    targetL0: In.scalar<number | null>(),
  };
}

export function crossLayerTrainHookProgram(s: CoderStructure, n: number, losses: sc.LossOptions = sc.REFERENCE_LOSSES, group = 0) {
  const signature = crossLayerStepSignature(n);
  return cachedProgram(`clt_train_hook:${tag(s)}:${n}${sc.lossTag(losses)}:${group}`, () =>
    defineProgram(
      `train_clt_hook_${tag(s)}_${n}${sc.lossTag(losses)}_g${group}`,
      signature,
      (g, io) => {
        const all = io as unknown as Record<string, unknown>;
        const ps = Array.from({ length: n }, (_, i) => all[`p${i}`] as CoderParams);
        const states = Array.from({ length: n }, (_, i) => all[`state${i}`] as SymBundle);
        const { context, mask, k, deadThreshold, thresholdBeta, ddp, auxkAlpha, accSteps, autocast } = io as unknown as CoderHookSyms & { context: SymBundle<string>; auxkAlpha: SymScalar; accSteps: SymScalar; autocast: SymScalar };
        const last = n - 1;
        const own = prepareActivations(g, ps[last]!, s, io as unknown as { inputs: SymTensor; outputs: SymTensor; mask: SymTensor; initBiases: SymScalar; ddp: SymScalar });
        countTokens(g, states[last]!, mask, own.yAll);
        const xs = ps.map((_, i) => (i === last ? own.x : context.get(cltKey('x', i, group))));
        const ys = ps.map((_, i) => (i === last ? own.y : context.get(cltKey('y', i, group))));
        const deadMasks = crossLayerDeadMasks(g, states, deadThreshold);
        let out!: ReturnType<typeof crossLayerForward>;
        g.autocast(autocast, () => {
          out = crossLayerForward(g, ps, xs, ys, deadMasks, k, s, losses);
        });
        ps.forEach((params, i) => {
          const enc = out.encoded[i]!;
          afterForward(g, s, { params, state: states[i]!, thresholdBeta, ddp } as CoderHookSyms, { kept: out.kept[i]!, latentIndices: enc.topIndices, latentActs: enc.topActs } as sc.TrainingForward);
        });
        // An activation trained towards an L0 (jumprelu): each source's sparsity loss, as a per-layer coder's.
        const sparsity = out.l0.map((l0) => (l0 ? sparsityLoss(g, io as unknown as CoderHookSyms, { l0 } as sc.TrainingForward)! : undefined));
        let loss = out.reconLoss.add(sumOf(out.auxkLoss).mul(auxkAlpha));
        for (const sp of sparsity) if (sp) loss = loss.add(sp);
        loss.named('loss').div(accSteps).backward();
        return { metrics: crossLayerStepMetrics(out.fvu.map((_, i) => i), out, out.l0, sparsity) };
      },
      { grad: true },
    ),
  );
}

/** Where a CLT with distributed modules places its layers: the rank of each layer, and the layers this rank owns (in order). */
export interface CrossLayerShard {
  owners: readonly number[];
  owned: readonly number[];
}

/**
 * A cross-layer transcoder's training step with distributed modules, in the last layer's hook
 * on every rank (each owned layer's x and y are in the context by then, or are this hook's own
 * activations): each owned source encodes its layer; every source's selection (values and
 * indices, never dense codes) goes from its owner to every rank; each rank rebuilds its own
 * targets from them (its decoders into each) and backpropagates their summed fvu into its
 * decoders and into copies of the shared values. Those gradients are summed into each source's
 * owner, which backpropagates them, with its AuxK and sparsity losses, into its encoder.
 * Metrics `fvu_j`, `auxk_j` per owned layer j (their global index).
 */
export function crossLayerShardTrainHookProgram(s: CoderStructure, n: number, shard: CrossLayerShard, losses: sc.LossOptions = sc.REFERENCE_LOSSES, group = 0) {
  const { owners, owned } = shard;
  const signature = crossLayerStepSignature(owned.length);
  const id = `${tag(s)}_${n}${sc.lossTag(losses)}_g${group}_own${owned.join('_')}_of${owners.join('')}`;
  return cachedProgram(`clt_shard_train_hook:${id}`, () =>
    defineProgram(
      `train_clt_shard_hook_${id}`,
      signature,
      (g, io) => {
        const all = io as unknown as Record<string, unknown>;
        const ps = owned.map((_, t) => all[`p${t}`] as CoderParams);
        const states = owned.map((_, t) => all[`state${t}`] as SymBundle);
        const { context, mask, k, deadThreshold, thresholdBeta, ddp, auxkAlpha, accSteps, autocast } = io as unknown as CoderHookSyms & { context: SymBundle<string>; auxkAlpha: SymScalar; accSteps: SymScalar; autocast: SymScalar };
        const last = n - 1;
        const xs: SymTensor[] = [];
        const ys: SymTensor[] = [];
        owned.forEach((j, t) => {
          if (j !== last) {
            xs.push(context.get(cltKey('x', j, group)));
            ys.push(context.get(cltKey('y', j, group)));
            return;
          }
          const own = prepareActivations(g, ps[t]!, s, io as unknown as { inputs: SymTensor; outputs: SymTensor; mask: SymTensor; initBiases: SymScalar; ddp: SymScalar });
          countTokens(g, states[t]!, mask, own.yAll);
          xs.push(own.x);
          ys.push(own.y);
        });
        const deadMasks = crossLayerDeadMasks(g, states, deadThreshold);
        const backward = losses.sparseBackward ?? 'index_add';
        const tokens = xs[0]!.size(0);
        let sent!: ReturnType<typeof crossLayerEncode>;
        let rows!: ReturnType<typeof asRows>[];
        let shared!: { values: SymTensor; indices: SymTensor }[];
        let out!: ReturnType<typeof crossLayerShardLosses>;
        g.autocast(autocast, () => {
          sent = crossLayerEncode(g, ps, xs, k, s, backward, owned);
          // Padded rows where a selection is ragged (its width, read off the device, travels first).
          rows = sent.kept.map((kept) => asRows(g, kept, tokens));
          const ragged = sent.kept[0]!.ragged !== undefined;
          shared = owners.map((owner, i) => {
            const t = owned.indexOf(i);
            const shape = ragged ? undefined : [tokens, k];
            const values = g.broadcastFrom(t >= 0 ? rows[t]!.values.detach() : g.none(), owner, rows[0]!.values, 2, shape).named(`shared_acts_${i}`);
            const indices = g.broadcastFrom(t >= 0 ? rows[t]!.indices : g.none(), owner, rows[0]!.indices, 2, shape).named(`shared_indices_${i}`);
            // Only the sources up to this rank's last target reach its decoders.
            if (i <= owned.at(-1)!) values.requiresGrad_();
            return { values, indices };
          });
          out = crossLayerShardLosses(g, { owned, params: ps, ys, encoded: sent.encoded, deadMasks }, shared, losses);
        });
        ps.forEach((params, t) => {
          const enc = sent.encoded[t]!;
          afterForward(g, s, { params, state: states[t]!, thresholdBeta, ddp } as CoderHookSyms, { kept: sent.kept[t]!, latentIndices: enc.topIndices, latentActs: enc.topActs } as sc.TrainingForward);
        });
        // The decoders' side: the owned targets' fvu, into the decoders and the shared values.
        // With the mse loss every rank divides by the total variance of every target (all-reduced).
        const mode = losses.crossLayerLoss ?? 'fvu';
        let totalVarianceAll: SymTensor | undefined;
        if (mode === 'mse') {
          totalVarianceAll = sumOf(out.totalVariance).detach().clone().named('total_variance_all');
          g.allReduce_(totalVarianceAll, 'sum');
        }
        crossLayerReconLoss(out, mode, totalVarianceAll).div(accSteps).backward();
        // The encoders' side: each source's value gradients summed into its owner (every rank
        // takes part in every source's reduce), as a surrogate whose gradient they are.
        let encoderLoss = sumOf(out.auxkLoss).mul(auxkAlpha);
        const sparsity = sent.l0.map((l0) => (l0 ? sparsityLoss(g, io as unknown as CoderHookSyms, { l0 } as sc.TrainingForward)! : undefined));
        for (const sp of sparsity) if (sp) encoderLoss = encoderLoss.add(sp);
        encoderLoss = encoderLoss.div(accSteps);
        owners.forEach((owner, i) => {
          const grad = (i <= owned.at(-1)! ? shared[i]!.values.grad : g.zerosLike(shared[i]!.values)).named(`shared_grad_${i}`);
          g.reduce_(grad, owner);
          const t = owned.indexOf(i);
          if (t >= 0) encoderLoss = encoderLoss.add(rows[t]!.values.mul(grad).sum());
        });
        encoderLoss.named('encoder_loss').backward();
        return { metrics: crossLayerStepMetrics(owned, out, sent.l0, sparsity) };
      },
      { grad: true },
    ),
  );
}
