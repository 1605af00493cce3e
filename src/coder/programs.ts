/** The small programs behind the SparseCoder API, built once per coder structure. */
import { defineProgram, type ProgramSpec } from '../kernels/graph.js';
import { cachedProgram as memoized, structureTag as tag } from '../kernels/cache.js';
import * as sc from '../kernels/sparse-coder.js';
import type { CoderParams, CoderStructure } from '../kernels/sparse-coder.js';

export function encodeProgram(s: CoderStructure): ProgramSpec<'top_acts' | 'top_indices' | 'pre_acts'> {
  return memoized(`encode:${tag(s)}`, () =>
    defineProgram(
      `coder_encode_${tag(s)}`,
      (g) => {
        const params = g.bundleInput<sc.CoderParamName>('params');
        const x = g.input('x', { shape: ['N', 'D'] });
        const k = g.scalarInput('k');
        const out = sc.encode(g, params, x, k, s);
        return { top_acts: out.topActs, top_indices: out.topIndices, pre_acts: out.preActs };
      },
      { grad: 'input' },
    ),
  );
}

export function decodeProgram(s: CoderStructure): ProgramSpec<'out'> {
  return memoized(`decode:${tag(s)}`, () =>
    defineProgram(
      `coder_decode_${tag(s)}`,
      (g) => {
        const params = g.bundleInput<sc.CoderParamName>('params');
        const acts = g.input('top_acts', { shape: ['N', 'k'] });
        const indices = g.input('top_indices', { shape: ['N', 'k'], dtype: 'int64' });
        return { out: sc.decode(g, params, acts, indices) };
      },
      { grad: 'input' },
    ),
  );
}

export type ForwardKeys = 'sae_out' | 'latent_acts' | 'latent_indices' | 'fvu' | 'auxk_loss' | 'multi_topk_fvu';

export function forwardProgram(s: CoderStructure): ProgramSpec<ForwardKeys> {
  return memoized(`forward:${tag(s)}`, () =>
    defineProgram(
      `coder_forward_${tag(s)}`,
      (g) => {
        const params: CoderParams = g.bundleInput<sc.CoderParamName>('params');
        const x = g.input('x', { shape: ['N', 'D'] });
        const yArg = g.optionalInput('y', { shape: ['N', 'D'] });
        const deadMask = g.optionalInput('dead_mask', { dtype: 'bool' });
        const k = g.scalarInput('k');
        const y = g.tensor(`${x.code} if ${yArg.code} is None else ${yArg.code}`, yArg.shape);
        const out = sc.forward(g, params, x, y, deadMask, k, s);
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
  return memoized('unit_norm', () =>
    defineProgram('coder_set_decoder_norm_to_unit_norm', (g) => {
      sc.setDecoderNormToUnitNorm(g, g.bundleInput<sc.CoderParamName>('params'));
      return { done: true };
    }),
  );
}

export function removeParallelGradProgram(): ProgramSpec<'done'> {
  return memoized('remove_parallel_grad', () =>
    defineProgram('coder_remove_gradient_parallel_to_decoder_directions', (g) => {
      sc.removeGradientParallelToDecoderDirections(g, g.bundleInput<sc.CoderParamName>('params'));
      return { done: true };
    }),
  );
}

export function initProgram(s: CoderStructure): ProgramSpec<'params'> {
  return memoized(`init:${tag(s)}`, () => sc.initParamsProgram(s));
}
