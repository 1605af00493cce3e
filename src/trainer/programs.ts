/**
 * The trainer's kernels: the per-hookpoint step (run inside the model's forward hook), the
 * optimizer step per coder, the end-to-end losses, and state set-up. Built once per
 * structure and compiled once; the hot loop calls them through one `hooks.run`.
 */
import { defineProgram, type ProgramBuilder, type ProgramSpec, type Tensor } from '../kernels/graph.js';
import { cachedProgram as memoized, structureTag as tag } from '../kernels/cache.js';
import * as sc from '../kernels/sparse-coder.js';
import { adam, muon, scheduleFreeEval, signumScheduleFree, slot, type OptimizerName } from '../kernels/optimizers.js';

/** Parameter names of a coder with this structure, in the reference's order. */
export function paramNames(s: Pick<sc.CoderStructure, 'skipConnection'>): sc.CoderParamName[] {
  return ['encoder.weight', 'encoder.bias', 'W_dec', 'b_dec', ...(s.skipConnection ? (['W_skip'] as const) : [])];
}

const MATRICES = new Set(['encoder.weight', 'W_dec', 'W_skip']);

/** Signum's schedule-free momentum. */
export const SCHEDULE_FREE_BETA = 0.95;

/**
 * Flatten the hook's tensors to [tokens, D], drop excluded tokens, initialise biases on the
 * first step, and keep decoder rows at unit norm (SAE).
 */
function prepareActivations(g: ProgramBuilder, params: sc.CoderParams, s: sc.CoderStructure): { x: Tensor; y: Tensor; yAll: Tensor; mask: Tensor; outputs: Tensor } {
  const inputs = g.input('inputs');
  const outputs = g.input('outputs');
  const mask = g.optionalInput('mask', { dtype: 'bool' });
  const initBiases = g.scalarInput('init_biases');
  const ddp = g.scalarInput('ddp');
  const yAll = outputs.flatten(0, 1);
  const xAll = s.transcode ? inputs.flatten(0, 1) : yAll;
  const y0 = g.tensor(`${yAll.code} if ${mask.code} is None else ${yAll.code}[${mask.code}]`);
  const x0 = s.transcode ? g.tensor(`${xAll.code} if ${mask.code} is None else ${xAll.code}[${mask.code}]`) : y0;
  const wEnc = params.get('encoder.weight');
  // Data-parallel ranks agree on the means (all-reduced); a gathered batch needs no reduce.
  g.when(initBiases, () =>
    g.noGrad(() => {
      if (s.transcode) {
        const xMean = x0.mean(0);
        g.when(ddp, () => g.allReduce_(xMean, 'mean'));
        const mean = xMean.typeAs(wEnc);
        params.get('encoder.bias').copy_(mean.neg().matmul(wEnc.mT));
      }
      const yMean = y0.mean(0);
      g.when(ddp, () => g.allReduce_(yMean, 'mean'));
      params.get('b_dec').copy_(yMean.typeAs(wEnc));
    }),
  );
  if (s.normalizeDecoder && !s.transcode) sc.setDecoderNormToUnitNorm(g, params);
  const x = x0.typeAs(wEnc);
  const y = s.transcode ? y0.typeAs(wEnc) : x;
  return { x, y, yAll, mask, outputs };
}

/** What every hook program starts from: the coder, its state, k, the dead mask, the activations. */
function hookInputs(g: ProgramBuilder, s: sc.CoderStructure) {
  const params = g.bundleInput<sc.CoderParamName>('params');
  const state = g.bundleInput<string>('state');
  const k = g.scalarInput('k');
  const deadThreshold = g.scalarInput('dead_threshold');
  const prepared = prepareActivations(g, params, s);
  const deadMask = g.tensor(`None if ${deadThreshold.code} is None else ${state.get('tokens_since_fired').code} > ${deadThreshold.code}`);
  return { params, state, k, deadMask, ...prepared };
}

/**
 * Local (fvu) training step for one coder, inside its module's forward hook: forward,
 * loss = fvu + auxk_alpha * auxk + multi_topk_fvu / 8, backward divided by acc_steps, in
 * `micro` chunks; marks fired latents; returns metric sums.
 */
export function fvuHookProgram(s: sc.CoderStructure): ProgramSpec<'metrics'> {
  return memoized(`fvu_hook:${tag(s)}`, () =>
    defineProgram(
      `train_fvu_hook_${tag(s)}`,
      (g) => {
        const { params, state, k, deadMask, x, y } = hookInputs(g, s);
        const auxkAlpha = g.scalarInput('auxk_alpha');
        const accSteps = g.scalarInput('acc_steps');
        const micro = g.scalarInput('micro');
        const autocast = g.scalarInput('autocast');
        const didFire = state.get('did_fire');
        const fvuSum = g.tensor(`${x.code}.new_zeros(())`);
        const auxkSum = g.tensor(`${x.code}.new_zeros(())`);
        const mtkSum = g.tensor(`${x.code}.new_zeros(())`);
        g.forRange(micro, (i) => {
          const xc = x.chunkAt(micro, i);
          const yc = s.transcode ? y.chunkAt(micro, i) : xc;
          // As the reference: the coder's forward under bf16 autocast on GPUs that support it.
          let out!: sc.ForwardOutput;
          g.block(`with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=${autocast.code})`, () => {
            out = sc.forward(g, params, xc, yc, deadMask, k, s);
          });
          g.noGrad(() => {
            didFire.setAt_(out.latentIndices.flatten(), true);
          });
          const loss = out.fvu.add(out.auxkLoss.mul(auxkAlpha)).add(out.multiTopkFvu.div(8));
          loss.div(accSteps).backward();
          fvuSum.add_(out.fvu.detach());
          auxkSum.add_(out.auxkLoss.detach());
          mtkSum.add_(out.multiTopkFvu.detach());
        });
        return { metrics: g.tensor(`{"fvu": ${fvuSum.code}, "auxk": ${auxkSum.code}, "multi_topk_fvu": ${mtkSum.code}}`) };
      },
      { grad: true },
    ),
  );
}

/**
 * End-to-end (ce/kl) hook: replace the module's output with the coder's reconstruction
 * (excluded tokens keep the original); gradients arrive from the model's loss.
 */
export function replaceHookProgram(s: sc.CoderStructure): ProgramSpec<'metrics' | 'output'> {
  return memoized(`replace_hook:${tag(s)}`, () =>
    defineProgram(
      `train_replace_hook_${tag(s)}`,
      (g) => {
        const { params, state, k, deadMask, x, y, yAll, mask, outputs: outputsRaw } = hookInputs(g, s);
        const out = sc.forward(g, params, x, y, deadMask, k, s);
        g.noGrad(() => {
          state.get('did_fire').setAt_(out.latentIndices.flatten(), true);
        });
        const recon = out.saeOut.typeAs(outputsRaw);
        const patched = g.tensor(`${recon.code} if ${mask.code} is None else ${yAll.code}.detach().clone().index_put((${mask.code},), ${recon.code})`);
        return {
          output: patched.reshapeAs(outputsRaw),
          metrics: g.tensor(`{"fvu": ${out.fvu.code}.detach(), "auxk": ${out.auxkLoss.code}.detach(), "multi_topk_fvu": ${out.multiTopkFvu.code}.detach()}`),
        };
      },
      { grad: true },
    ),
  );
}

/** ce: the LM's next-token cross-entropy; kl: -sum(clean_probs * patched_logprobs), token mean. */
export function lossProgram(kind: 'ce' | 'kl'): ProgramSpec<'metrics'> {
  return memoized(`loss:${kind}`, () =>
    defineProgram(
      `train_loss_${kind}`,
      (g) => {
        const logits = g.input('logits');
        const inputIds = g.input('input_ids', { dtype: 'int64' });
        const clean = g.optionalInput('clean_logits');
        const accSteps = g.scalarInput('acc_steps');
        let loss: Tensor;
        if (kind === 'ce') {
          const shifted = g.tensor(`${logits.code}[:, :-1].float().flatten(0, 1)`);
          const labels = g.tensor(`${inputIds.code}[:, 1:].flatten()`);
          loss = g.tensor(`F.cross_entropy(${shifted.code}, ${labels.code})`, []);
        } else {
          const cleanProbs = clean.float().softmax(-1);
          const dirty = logits.float().logSoftmax(-1);
          loss = cleanProbs.mul(dirty).sum(-1).neg().mean();
        }
        loss.div(accSteps).backward();
        return { metrics: g.tensor(`{${JSON.stringify(kind)}: ${loss.code}.detach()}`) };
      },
      { grad: true },
    ),
  );
}

/** The model's own CE on a batch (no hooks), printed before ce training. */
export function cleanCeProgram(): ProgramSpec<'metrics'> {
  return memoized('clean_ce', () =>
    defineProgram('train_clean_ce', (g) => {
      const logits = g.input('logits');
      const inputIds = g.input('input_ids', { dtype: 'int64' });
      g.optionalInput('clean_logits');
      const shifted = g.tensor(`${logits.code}[:, :-1].float().flatten(0, 1)`);
      const labels = g.tensor(`${inputIds.code}[:, 1:].flatten()`);
      return { metrics: g.tensor(`{"ce": F.cross_entropy(${shifted.code}, ${labels.code})}`) };
    }),
  );
}

/** Optimizer state and dead-latent counters for one coder. */
export function stateInitProgram(s: sc.CoderStructure, optimizer: OptimizerName): ProgramSpec<'state'> {
  return memoized(`state_init:${optimizer}:${tag(s)}`, () =>
    defineProgram(`train_state_init_${optimizer}_${tag(s)}`, (g) => {
      const params = g.bundleInput<sc.CoderParamName>('params');
      const wEnc = params.get('encoder.weight');
      const entries: [string, Tensor][] = [
        ['tokens_since_fired', g.tensor(`torch.zeros(${wEnc.code}.shape[0], dtype=torch.long, device=${wEnc.code}.device)`)],
        ['did_fire', g.tensor(`torch.zeros(${wEnc.code}.shape[0], dtype=torch.bool, device=${wEnc.code}.device)`)],
      ];
      for (const name of paramNames(s)) {
        const p = params.get(name);
        if (optimizer === 'adam' || (optimizer === 'muon' && !MATRICES.has(name))) {
          entries.push([`exp_avg.${name}`, g.zerosLike(p.detach())], [`exp_avg_sq.${name}`, g.zerosLike(p.detach())]);
        } else if (optimizer === 'muon') {
          entries.push([`momentum_buffer.${name}`, g.zerosLike(p.detach())]);
        }
      }
      return { state: g.tensor(`Bundle({${entries.map(([k, t]) => `${JSON.stringify(k)}: ${t.code}`).join(', ')}})`) };
    }),
  );
}

/**
 * One optimizer step for one coder: project out the decoder-parallel gradient (SAE with
 * unit-norm decoder), update, clear gradients, update dead-latent counters.
 */
export function optimizerProgram(s: sc.CoderStructure, optimizer: OptimizerName): ProgramSpec<'metrics'> {
  return memoized(`optimizer:${optimizer}:${tag(s)}`, () =>
    defineProgram(`train_optimizer_${optimizer}_${tag(s)}`, (g) => {
      const params = g.bundleInput<sc.CoderParamName>('params');
      const state = g.bundleInput<string>('state');
      const lr = g.scalarInput('lr');
      const lrAdam = g.scalarInput('lr_adam');
      const ckp1 = g.scalarInput('ckp1');
      const adamStep = g.scalarInput('adam_step');
      const tokens = g.scalarInput('tokens');
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
              signumScheduleFree(g, p, slot(state, 'z', name), lr, ckp1, SCHEDULE_FREE_BETA);
            } else if (optimizer === 'adam' || !MATRICES.has(name)) {
              adam(g, p, slot(state, 'exp_avg', name), slot(state, 'exp_avg_sq', name), optimizer === 'adam' ? lr : lrAdam, adamStep);
            } else {
              // Newton-Schulz runs on one rank per matrix (round robin), then is broadcast.
              const owner = g.scalarExpr(`((${muonOffset.code} + ${matrixIndex}) % _world_size())`);
              matrixIndex += 1;
              muon(g, p, slot(state, 'momentum_buffer', name), lr, owner);
            }
            g.emit(`${p.code}.grad = None`);
          });
        }
        const counts = state.get('tokens_since_fired');
        const didFire = state.get('did_fire');
        counts.add_(tokens);
        counts.setAt_(didFire, 0);
        didFire.zero_();
      });
      const deadPct = g.tensor(`(${state.get('tokens_since_fired').code} > ${deadThreshold.code}).float().mean()`);
      return { metrics: g.tensor(`{"dead_pct": ${deadPct.code}}`) };
    }),
  );
}

/** The parameters to save: x for schedule-free (from y and z, y untouched), else as they are. */
export function saveParamsProgram(s: sc.CoderStructure, optimizer: OptimizerName): ProgramSpec<'params'> {
  return memoized(`save_params:${optimizer}:${tag(s)}`, () =>
    defineProgram(`train_save_params_${optimizer}_${tag(s)}`, (g) => {
      const params = g.bundleInput<sc.CoderParamName>('params');
      const state = g.bundleInput<string>('state');
      const entries = paramNames(s).map((name) => {
        const p = params.get(name);
        if (optimizer !== 'signum') return [name, p.detach()] as const;
        const z = state.maybe(`z.${name}`);
        const { t } = g.ifElse(g.isNone(z), () => ({ t: p.detach() }), () => ({ t: scheduleFreeEval(p, z, SCHEDULE_FREE_BETA) }));
        return [name, t] as const;
      });
      return { params: g.tensor(`Bundle({${entries.map(([k, t]) => `${JSON.stringify(k)}: ${t.code}`).join(', ')}})`) };
    }),
  );
}

