/** The small programs behind the SparseCoder API, built once per coder structure. */
import { cachedProgram, defineProgram, type ProgramSpec } from '../kernels/index.js';
import * as sc from '../math/sparse-coder.js';
import { structureTag as tag, type CoderParamName, type CoderStructure } from '../math/structure.js';

export function encodeProgram(s: CoderStructure): ProgramSpec<'top_acts' | 'top_indices' | 'pre_acts'> {
  return cachedProgram(`encode:${tag(s)}`, () =>
    defineProgram(
      `coder_encode_${tag(s)}`,
      (g) => {
        const params = g.bundleInput<CoderParamName>('params');
        // Inputs of another float dtype (float64 from JS, bf16 from a model) in the coder's own.
        const x = g.input('x', { shape: ['N', 'D'] }).typeAs(params.get('encoder.weight')).named('x_in');
        const k = g.scalarInput('k');
        const out = sc.encode(g, params, x, k, s);
        return { top_acts: out.topActs, top_indices: out.topIndices, pre_acts: out.preActs };
      },
      { grad: 'input' },
    ),
  );
}

export function decodeProgram(s: CoderStructure): ProgramSpec<'out'> {
  return cachedProgram(`decode:${tag(s)}`, () =>
    defineProgram(
      `coder_decode_${tag(s)}`,
      (g) => {
        const params = g.bundleInput<CoderParamName>('params');
        const acts = g.input('top_acts', { shape: ['N', 'k'] });
        const indices = g.input('top_indices', { shape: ['N', 'k'], dtype: 'int64' });
        return { out: sc.decode(g, params, acts, indices) };
      },
      { grad: 'input' },
    ),
  );
}

export type ForwardKeys = 'sae_out' | 'latent_acts' | 'latent_indices' | 'fvu' | 'auxk_loss' | 'multi_topk_fvu';

export function forwardProgram(s: CoderStructure, losses: sc.LossOptions = sc.REFERENCE_LOSSES): ProgramSpec<ForwardKeys> {
  return cachedProgram(`forward:${tag(s)}${sc.lossTag(losses)}`, () =>
    defineProgram(
      `coder_forward_${tag(s)}${sc.lossTag(losses)}`,
      (g) => {
        const params = g.bundleInput<CoderParamName>('params');
        // Inputs of another float dtype (float64 from JS, bf16 from a model) in the coder's own.
        const weight = params.get('encoder.weight');
        const x = g.input('x', { shape: ['N', 'D'] }).typeAs(weight).named('x_in');
        const yArg = g.optionalInput('y', { shape: ['N', 'D'] });
        const deadMask = g.optionalInput('dead_mask', { dtype: 'bool' });
        const k = g.scalarInput('k');
        // Without a distinct target, we are autoencoding.
        const y = g.orElse(yArg, x).typeAs(weight).named('target');
        const out = sc.forward(g, params, x, y, deadMask, k, s, losses);
        return {
          sae_out: out.saeOut,
          latent_acts: out.latentActs,
          latent_indices: out.latentIndices,
          fvu: out.fvu,
          auxk_loss: out.auxkLoss,
          multi_topk_fvu: out.multiTopkFvu,
        };
      },
      { grad: 'input' },
    ),
  );
}

export function unitNormProgram(): ProgramSpec<'done'> {
  return cachedProgram('unit_norm', () =>
    defineProgram('coder_set_decoder_norm_to_unit_norm', (g) => {
      sc.setDecoderNormToUnitNorm(g, g.bundleInput<CoderParamName>('params'));
      return { done: true };
    }),
  );
}

export function removeParallelGradProgram(): ProgramSpec<'done'> {
  return cachedProgram('remove_parallel_grad', () =>
    defineProgram('coder_remove_gradient_parallel_to_decoder_directions', (g) => {
      sc.removeGradientParallelToDecoderDirections(g, g.bundleInput<CoderParamName>('params'));
      return { done: true };
    }),
  );
}

/** A new coder's parameters (SparseCoder.__init__), in the given dtype and device, seeded when a seed is given. */
export function initProgram(s: CoderStructure): ProgramSpec<'params'> {
  return cachedProgram(`init:${tag(s)}`, () =>
    defineProgram(`init_coder_${s.transcode ? 'tc' : 'sae'}${s.skipConnection ? '_skip' : ''}${s.normalizeDecoder ? '_norm' : ''}`, (g) => {
      const seed = g.scalarInput('seed');
      const dIn = g.scalarInput('d_in');
      const numLatents = g.scalarInput('num_latents');
      const device = g.objectInput('device');
      const dtype = g.objectInput('dtype');
      return { params: sc.initParams(g, s, { seed, dIn, numLatents, device, dtype }) };
    }),
  );
}
