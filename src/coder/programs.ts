/** The small programs behind the SparseCoder API, built once per coder structure. */
import { activation, asRows } from '../activations/index.js';
import { In, cachedProgram, defineProgram } from '../kernels/index.js';
import * as sc from '../math/sparse-coder.js';
import { structureTag as tag, type CoderParamName, type CoderStructure } from '../math/structure.js';

const params = In.bundle<CoderParamName>();

/** `SparseCoder.encode`: the selection inference makes ('infer'), or the one asked for. */
export function encodeProgram(s: CoderStructure, mode: 'infer' | 'selection' | 'threshold' = 'infer') {
  const suffix = mode === 'infer' ? '' : `_${mode}`;
  return cachedProgram(`encode:${tag(s)}${suffix}`, () =>
    defineProgram(
      `coder_encode_${tag(s)}${suffix}`,
      { params, x: In.tensor({ shape: ['N', 'D'] }), k: In.scalar() },
      (g, { params, x, k }) => {
        // Inputs of another float dtype (float64 from JS, bf16 from a model) in the coder's own.
        const xIn = x.typeAs(params.get('encoder.weight')).named('x_in');
        const out: sc.EncoderOutput = sc.encode(g, params, xIn, k, s, 'index_add', mode);
        return { topActs: out.topActs, topIndices: out.topIndices, preActs: out.preActs };
      },
      { grad: 'input' },
    ),
  );
}

export function decodeProgram(s: CoderStructure) {
  return cachedProgram(`decode:${tag(s)}`, () =>
    defineProgram(
      `coder_decode_${tag(s)}`,
      { params, topActs: In.tensor({ shape: ['N', 'k'] }), topIndices: In.tensor({ shape: ['N', 'k'], dtype: 'int64' }) },
      (g, { params, topActs, topIndices }) => ({ out: sc.decode(g, params, { values: topActs, indices: topIndices }) }),
      { grad: 'input' },
    ),
  );
}

export function forwardProgram(s: CoderStructure, losses: sc.LossOptions = sc.REFERENCE_LOSSES) {
  return cachedProgram(`forward:${tag(s)}${sc.lossTag(losses)}`, () =>
    defineProgram(
      `coder_forward_${tag(s)}${sc.lossTag(losses)}`,
      { params, x: In.tensor({ shape: ['N', 'D'] }), y: In.optionalTensor({ shape: ['N', 'D'] }), deadMask: In.optionalTensor({ dtype: 'bool' }), k: In.scalar() },
      (g, { params, x, y, deadMask, k }) => {
        // Inputs of another float dtype (float64 from JS, bf16 from a model) in the coder's own.
        const weight = params.get('encoder.weight');
        const xIn = x.typeAs(weight).named('x_in');
        // Without a distinct target, we are autoencoding.
        const target = g.orElse(y, xIn).typeAs(weight).named('target');
        const { saeOut, latentActs, latentIndices, latentRagged, fvu, auxkLoss, multiTopkFvu } = sc.forward(g, params, xIn, target, deadMask, k, s, losses);
        // The API hands on rows, one per token.
        const latents = asRows(g, { values: latentActs, indices: latentIndices, ...(latentRagged ? { ragged: latentRagged } : {}) }, xIn.size(0));
        return { saeOut, latentActs: latents.values, latentIndices: latents.indices, fvu, auxkLoss, multiTopkFvu };
      },
      { grad: 'input' },
    ),
  );
}

export function unitNormProgram() {
  return cachedProgram('unit_norm', () =>
    defineProgram('coder_set_decoder_norm_to_unit_norm', { params }, (g, { params }) => {
      sc.setDecoderNormToUnitNorm(g, params);
      return { done: true };
    }),
  );
}

export function removeParallelGradProgram() {
  return cachedProgram('remove_parallel_grad', () =>
    defineProgram('coder_remove_gradient_parallel_to_decoder_directions', { params }, (g, { params }) => {
      sc.removeGradientParallelToDecoderDirections(g, params);
      return { done: true };
    }),
  );
}

/** A new coder's parameters (SparseCoder.__init__), in the given dtype and device, seeded when a seed is given. */
export function initProgram(s: CoderStructure) {
  return cachedProgram(`init:${tag(s)}`, () =>
    defineProgram(
      `init_coder_${s.transcode ? 'tc' : 'sae'}${s.skipConnection ? '_skip' : ''}${s.normalizeDecoder ? '_norm' : ''}${activation(s.activation).params.length ? `_${s.activation}` : ''}${s.inferenceThreshold ? '_thr' : ''}`,
      { seed: In.scalar<number | null>(), dIn: In.scalar(), numLatents: In.scalar(), device: In.object<string>(), dtype: In.object<string>() },
      (g, inputs) => ({ params: sc.initParams(g, s, inputs) }),
    ),
  );
}
