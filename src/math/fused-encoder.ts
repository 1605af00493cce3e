/**
 * The "fused encoder" (sparsify/fused_encoder.py: FusedEncoder): relu(x W^T + b), then top-k
 * (or the max of each of k groups), with the reference's hand-written backward. Gradients flow
 * only through the selected entries and, as in the reference, without the relu mask: a
 * selected entry whose pre-activation was clipped to 0 still passes gradient. The
 * pre-activations pass none.
 */
import { defineAutogradFunction, type AutogradFunction, type SymTensor } from '../kernels/index.js';
import type { Activation } from './structure.js';

type Encoder = AutogradFunction<'input' | 'weight' | 'bias', 'k', 'values' | 'indices' | 'preacts'>;

function fusedEncoder(activation: Activation): Encoder {
  return defineAutogradFunction({
    name: activation === 'topk' ? 'FusedEncoderTopK' : 'FusedEncoderGroupMax',
    tensorInputs: ['input', 'weight', 'bias'],
    scalarInputs: ['k'],
    outputs: ['values', 'indices', 'preacts'],
    nonDifferentiable: ['indices'],
    forward(f, { input, weight, bias }, { k }) {
      const preacts = f.linear(input, weight, bias).relu().named('preacts');
      let values: SymTensor;
      let indices: SymTensor;
      if (activation === 'topk') {
        ({ values, indices } = preacts.topk(k, { dim: -1, sorted: false }));
      } else {
        // torch.max gives positions within each group; the offsets make them latent indices.
        const numLatents = preacts.size(-1);
        const grouped = preacts.unflatten(-1, [k, -1]).max(-1);
        const offsets = f.arange(0, numLatents, numLatents.floorDiv(k), preacts).named('offsets');
        values = grouped.values;
        indices = offsets.add(grouped.indices);
      }
      return { outputs: { values: values.named('values'), indices: indices.named('indices'), preacts }, save: { input, weight, bias, indices } };
    },
    backward: {
      // d input = sum over the selected latents of grad * W[idx] (an embedding bag).
      input: (b, s, g) => b.embeddingBag(s.indices!, s.weight!, g.values.typeAs(s.weight!)).named('grad_input'),
      // d W[idx] += grad * input, accumulated per selected latent.
      weight: (b, s, g) => {
        const gradWeight = b.zerosLike(s.weight!).named('grad_weight');
        const contributions = g.values.unsqueeze(2).mul(s.input!.unsqueeze(1)).named('contributions');
        gradWeight.indexAdd_(0, s.indices!.flatten(), contributions.reshape(-1, s.input!.size(-1)).typeAs(s.weight!));
        return gradWeight;
      },
      // d b[idx] += grad.
      bias: (b, s, g) => {
        const gradBias = b.zerosLike(s.bias!).named('grad_bias');
        gradBias.indexAdd_(0, s.indices!.flatten(), g.values.flatten().typeAs(s.bias!));
        return gradBias;
      },
    },
    inferShapes: (t, sc) => {
      const n = t.input.shape?.[0];
      const m = t.weight.shape?.[0];
      const k = typeof sc.k === 'number' ? sc.k : 'k';
      return {
        values: n !== undefined ? { shape: [n, k] } : {},
        indices: n !== undefined ? { shape: [n, k], dtype: 'int64' } : { dtype: 'int64' },
        preacts: n !== undefined && m !== undefined ? { shape: [n, m] } : {},
      };
    },
  });
}

export const FusedEncoderTopK = fusedEncoder('topk');
export const FusedEncoderGroupMax = fusedEncoder('groupmax');
