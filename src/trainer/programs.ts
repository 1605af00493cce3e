/**
 * The trainer's programs: the per-hookpoint step (run inside the model's forward hook), the
 * optimizer step per coder, the end-to-end losses, and state set-up. Each is built once per
 * structure and compiled once; the hot loop runs them all through one `hooks.run` call. They
 * follow the reference's `Trainer.fit` (sparsify/trainer.py) step by step.
 */
import { cachedProgram, defineProgram, type ProgramBuilder, type ProgramSpec, type SymBundle, type SymTensor } from '../kernels/index.js';
import { logitsInputs } from '../model/pass-inputs.js';
import * as sc from '../math/sparse-coder.js';
import { MATRIX_PARAMS, paramNames, structureTag as tag, type CoderParamName, type CoderParams, type CoderStructure } from '../math/structure.js';
import { adam, muon, scheduleFreeEval, signumScheduleFree, slot, type OptimizerName } from '../math/optimizers.js';

/** Signum's schedule-free momentum (the reference's `ScheduleFreeWrapper(momentum=0.95)`). */
export const SCHEDULE_FREE_BETA = 0.95;

/**
 * Flatten the hook's tensors to [tokens, D], drop excluded tokens, initialise biases on the
 * first step, and keep decoder rows at unit norm (SAE), as the reference's hook does.
 */
function prepareActivations(g: ProgramBuilder, params: CoderParams, s: CoderStructure) {
  const inputs = g.input('inputs');
  const outputs = g.input('outputs');
  const mask = g.optionalInput('mask', { dtype: 'bool' });
  g.objectInput('context'); // the batch's context (hook programs all take it; training needs none)
  const initBiases = g.scalarInput('init_biases');
  const ddp = g.scalarInput('ddp');
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
  return { x, y: s.transcode ? y0.typeAs(wEnc).named('y') : x, yAll, mask, outputs };
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

/** What every hook program starts from: the coder, its state, k, the dead mask, the activations. */
function hookInputs(g: ProgramBuilder, s: CoderStructure) {
  const params = g.bundleInput<CoderParamName>('params');
  const state = g.bundleInput<string>('state');
  const k = g.scalarInput('k');
  const deadThreshold = g.scalarInput('dead_threshold');
  const prepared = prepareActivations(g, params, s);
  countTokens(g, state, prepared.mask, prepared.yAll);
  // Latents that have not fired for dead_threshold tokens; no mask (no AuxK) without a threshold.
  const { deadMask } = g.ifElse(
    g.isNone(deadThreshold),
    () => ({ deadMask: g.none() }),
    () => ({ deadMask: state.get('tokens_since_fired').gt(deadThreshold) }),
  );
  return { params, state, k, deadMask, ...prepared };
}

/** Mark the latents a step selected, for the dead-latent counters. */
function markFired(g: ProgramBuilder, state: SymBundle, latentIndices: SymTensor): void {
  g.noGrad(() => {
    // index_fill_, not did_fire[idx] = True: the latter copies True from the host, a sync on CUDA.
    state.get('did_fire').indexFill_(0, latentIndices.flatten(), true);
  });
}

/**
 * Local (fvu) training step for one coder, inside its module's forward hook: forward,
 * loss = fvu + auxk_alpha * auxk + multi_topk_fvu / 8, backward divided by acc_steps, in
 * `micro` chunks; marks fired latents; returns metric sums.
 */
export function fvuHookProgram(s: CoderStructure, losses: sc.LossOptions = sc.REFERENCE_LOSSES): ProgramSpec<'metrics'> {
  return cachedProgram(`fvu_hook:${tag(s)}${sc.lossTag(losses)}`, () =>
    defineProgram(
      `train_fvu_hook_${tag(s)}${sc.lossTag(losses)}`,
      (g) => {
        const { params, state, k, deadMask, x, y } = hookInputs(g, s);
        const auxkAlpha = g.scalarInput('auxk_alpha');
        const accSteps = g.scalarInput('acc_steps');
        const micro = g.scalarInput('micro');
        const autocast = g.scalarInput('autocast');
        const fvuSum = x.newZeros([]).named('fvu_sum');
        const auxkSum = x.newZeros([]).named('auxk_sum');
        const mtkSum = x.newZeros([]).named('multi_topk_fvu_sum');
        g.forRange(micro, (i) => {
          const xc = x.chunkAt(micro, i).named('x_chunk');
          const yc = s.transcode ? y.chunkAt(micro, i).named('y_chunk') : xc;
          // As the reference: the coder's forward under bf16 autocast on GPUs that support it.
          let out!: sc.ForwardOutput;
          g.autocast(autocast, () => {
            out = sc.forward(g, params, xc, yc, deadMask, k, s, losses);
          });
          markFired(g, state, out.latentIndices);
          const loss = out.fvu.add(out.auxkLoss.mul(auxkAlpha)).add(out.multiTopkFvu.div(8)).named('loss');
          loss.div(accSteps).backward();
          fvuSum.add_(out.fvu.detach());
          auxkSum.add_(out.auxkLoss.detach());
          mtkSum.add_(out.multiTopkFvu.detach());
        });
        return { metrics: { fvu: fvuSum, auxk: auxkSum, multi_topk_fvu: mtkSum } };
      },
      { grad: true },
    ),
  );
}

/**
 * End-to-end (ce/kl) hook: replace the module's output with the coder's reconstruction
 * (excluded tokens keep the original); gradients arrive from the model's loss.
 */
export function replaceHookProgram(s: CoderStructure, losses: sc.LossOptions = sc.REFERENCE_LOSSES): ProgramSpec<'metrics' | 'output'> {
  return cachedProgram(`replace_hook:${tag(s)}${sc.lossTag(losses)}`, () =>
    defineProgram(
      `train_replace_hook_${tag(s)}${sc.lossTag(losses)}`,
      (g) => {
        const { params, state, k, deadMask, x, y, yAll, mask, outputs: outputsRaw } = hookInputs(g, s);
        const out = sc.forward(g, params, x, y, deadMask, k, s, losses);
        markFired(g, state, out.latentIndices);
        const recon = out.saeOut.typeAs(outputsRaw).named('reconstruction');
        const { patched } = g.ifElse(
          g.isNone(mask),
          () => ({ patched: recon }),
          () => ({ patched: yAll.detach().clone().indexPut(mask, recon) }),
        );
        return {
          output: patched.reshapeAs(outputsRaw),
          metrics: { fvu: out.fvu.detach(), auxk: out.auxkLoss.detach(), multi_topk_fvu: out.multiTopkFvu.detach() },
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
export function keepCleanLogitsProgram(): ProgramSpec<'keep'> {
  return cachedProgram('keep_clean_logits', () =>
    defineProgram('train_keep_clean_logits', (g) => {
      const { logits } = logitsInputs(g);
      return { keep: { clean_logits: logits } };
    }),
  );
}

/** ce: the LM's next-token cross-entropy; kl: -sum(clean_probs * patched_logprobs), token mean. */
export function lossProgram(kind: 'ce' | 'kl'): ProgramSpec<'metrics'> {
  return cachedProgram(`loss:${kind}`, () =>
    defineProgram(
      `train_loss_${kind}`,
      (g) => {
        const { logits, inputIds, context } = logitsInputs(g);
        const accSteps = g.scalarInput('acc_steps');
        let loss: SymTensor;
        if (kind === 'ce') {
          loss = nextTokenCe(g, logits, inputIds);
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
export function cleanCeProgram(): ProgramSpec<'metrics'> {
  return cachedProgram('clean_ce', () =>
    defineProgram('train_clean_ce', (g) => {
      const { logits, inputIds } = logitsInputs(g);
      return { metrics: { ce: nextTokenCe(g, logits, inputIds) } };
    }),
  );
}

/** Optimizer state and dead-latent counters for one coder. */
export function stateInitProgram(s: CoderStructure, optimizer: OptimizerName): ProgramSpec<'state'> {
  return cachedProgram(`state_init:${optimizer}:${tag(s)}`, () =>
    defineProgram(`train_state_init_${optimizer}_${tag(s)}`, (g) => {
      const params = g.bundleInput<CoderParamName>('params');
      const wEnc = params.get('encoder.weight');
      const entries: Record<string, SymTensor> = {
        tokens_since_fired: g.zeros([wEnc.size(0)], { dtype: 'int64', device: wEnc }).named('tokens_since_fired'),
        did_fire: g.zeros([wEnc.size(0)], { dtype: 'bool', device: wEnc }).named('did_fire'),
        // Tokens trained on since the last optimizer step (kept on the device: no sync).
        step_tokens: g.zeros([], { dtype: 'int64', device: wEnc }).named('step_tokens'),
      };
      for (const name of paramNames(s)) {
        const p = params.get(name);
        if (optimizer === 'adam' || (optimizer === 'muon' && !MATRIX_PARAMS.has(name))) {
          entries[`exp_avg.${name}`] = g.zerosLike(p.detach());
          entries[`exp_avg_sq.${name}`] = g.zerosLike(p.detach());
        } else if (optimizer === 'muon') {
          entries[`momentum_buffer.${name}`] = g.zerosLike(p.detach());
        }
      }
      return { state: g.bundle(entries).named('state') };
    }),
  );
}

/**
 * One optimizer step for one coder: project out the decoder-parallel gradient (SAE with
 * unit-norm decoder), update, clear gradients, update dead-latent counters.
 */
export function optimizerProgram(s: CoderStructure, optimizer: OptimizerName): ProgramSpec<'metrics'> {
  return cachedProgram(`optimizer:${optimizer}:${tag(s)}`, () =>
    defineProgram(`train_optimizer_${optimizer}_${tag(s)}`, (g) => {
      const params = g.bundleInput<CoderParamName>('params');
      const state = g.bundleInput<string>('state');
      const lr = g.scalarInput('lr');
      const lrAdam = g.scalarInput('lr_adam');
      const ckp1 = g.scalarInput('ckp1');
      const adamStep = g.scalarInput('adam_step');
      const deadThreshold = g.scalarInput('dead_threshold');
      const ddp = g.scalarInput('ddp');
      const muonOffset = g.scalarInput('muon_offset');
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
        for (const name of paramNames(s)) {
          const p = params.get(name);
          g.when(g.isNone(p.grad).not(), () => {
            if (optimizer === 'signum') {
              g.when(state.has(`z.${name}`).not(), () => state.set(`z.${name}`, p.detach().clone()));
              signumScheduleFree(p, slot(state, 'z', name), lr, ckp1, SCHEDULE_FREE_BETA);
            } else if (optimizer === 'adam' || !MATRIX_PARAMS.has(name)) {
              adam(g, p, slot(state, 'exp_avg', name), slot(state, 'exp_avg_sq', name), optimizer === 'adam' ? lr : lrAdam, adamStep);
            } else {
              // Newton-Schulz runs on one rank per matrix (round robin), then is broadcast.
              const owner = muonOffset.add(matrixIndex).mod(g.worldSize());
              matrixIndex += 1;
              muon(g, p, slot(state, 'momentum_buffer', name), lr, owner);
            }
            p.clearGrad();
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
    }),
  );
}

/** The parameters to save: x for schedule-free (from y and z, y untouched), else as they are. */
export function saveParamsProgram(s: CoderStructure, optimizer: OptimizerName): ProgramSpec<'params'> {
  return cachedProgram(`save_params:${optimizer}:${tag(s)}`, () =>
    defineProgram(`train_save_params_${optimizer}_${tag(s)}`, (g) => {
      const params = g.bundleInput<CoderParamName>('params');
      const state = g.bundleInput<string>('state');
      const entries = {} as Record<CoderParamName, SymTensor>;
      for (const name of paramNames(s)) {
        const p = params.get(name);
        if (optimizer !== 'signum') {
          entries[name] = p.detach();
          continue;
        }
        const z = state.maybe(`z.${name}`);
        const { saved } = g.ifElse(g.isNone(z), () => ({ saved: p.detach() }), () => ({ saved: scheduleFreeEval(p, z, SCHEDULE_FREE_BETA) }));
        entries[name] = saved;
      }
      return { params: g.bundle(entries).named('saved_params') };
    }),
  );
}
