/**
 * `jumprelu`: a threshold per latent, f = pre * H(pre - theta), so a token keeps every latent
 * whose pre-activation clears its threshold (no k). The thresholds train through
 * straight-through pseudo-derivatives (a rectangle kernel of width `--jumprelu_bandwidth`) and
 * an L0 loss: dictionary_learning's JumpReluTrainer (its JumpReLUFunction and StepFunction,
 * RectangleFunction the kernel), computed on the latents near or above their thresholds only.
 *
 * Training's pre-activations are not relu'd, as dictionary_learning's are not; inference
 * encodes relu(pre * (pre > theta)), as its JumpReluAutoEncoder.encode does (the same while
 * the thresholds are positive). The thresholds start at 0.001 (its Appendix I value).
 */
import { defineAutogradFunction, type SymScalar, type SymTensor } from '../kernels/index.js';
import { backwardSuffix, gradBias, gradInput, gradWeight, savedEntries, type SparseBackward } from '../math/sparse-grads.js';
import type { Activation, ActivationEncoder, LatentSelection } from './activation.js';
import { raggedFromPositions } from './ragged.js';
import { thresholdSelection } from './threshold-selection.js';

/** The thresholds' starting value. */
const INIT_THRESHOLD = 0.001;

/**
 * The entries of `pre` [N, M] that clear `floor` [M], ragged (flat, row-major, with each one's
 * token), their values the pre-activations. One sync: their count.
 */
function above(pre: SymTensor, floor: SymTensor): LatentSelection {
  const positions = pre.gt(floor).flatten().nonzero().named('at_or_above');
  const slotPre = pre.flatten().select(positions).named('slot_pre');
  return raggedFromPositions(positions, slotPre, pre.size(0), pre.size(-1));
}

/** RectangleFunction: 1 on (-0.5, 0.5), else 0, in `like`'s dtype. */
const rectangle = (u: SymTensor, like: SymTensor): SymTensor => u.gt(-0.5).and(u.lt(0.5)).typeAs(like).named('rectangle');

/** f = pre * (pre > theta) at the slots, with theta gathered per slot. */
function jump(pre: SymTensor, theta: SymTensor): SymTensor {
  return pre.mul(pre.gt(theta).typeAs(pre)).named('jumped');
}

const encoders = new Map<SparseBackward, ActivationEncoder<'threshold'>>();

/** JumpReLUFunction's d pre: the gradient where the entry clears its threshold. */
const passed = (s: Record<string, SymTensor | undefined>, grad: SymTensor): SymTensor => grad.mul(s.pre!.gt(s.theta!).typeAs(grad)).named('grad_pre');

/**
 * relu-free pre-activations, then the jump at each latent's threshold. The slots are the
 * latents above theta - bandwidth/2, so that those just below their threshold, where the
 * pseudo-derivative of theta is not zero, receive the gradient of their (zero) value too.
 * Backward (JumpReLUFunction): d pre = (pre > theta) * grad, d theta = -(theta / bandwidth) *
 * rect((pre - theta) / bandwidth) * grad, summed per latent.
 */
function jumpEncoder(backward: SparseBackward): ActivationEncoder<'threshold'> {
  let fn = encoders.get(backward);
  if (!fn) {
    fn = defineAutogradFunction({
      name: `FusedEncoderJumpReLU${backwardSuffix(backward)}`,
      tensorInputs: ['input', 'weight', 'bias', 'threshold'],
      scalarInputs: ['k', 'bandwidth'],
      outputs: ['values', 'indices', 'preacts', 'rows', 'offsets'],
      nonDifferentiable: ['indices', 'rows', 'offsets'],
      materializeGrads: false,
      forward(f, { input, weight, bias, threshold }, { bandwidth }) {
        const pre = f.linear(input, weight, bias).named('pre');
        const { values: slotPre, indices, ragged } = above(pre, threshold.sub(bandwidth.div(2)).named('floor'));
        const theta = threshold.select(indices).named('slot_theta');
        const values = jump(slotPre, theta);
        const rows = ragged!.rows.named('rows');
        const offsets = ragged!.offsets.named('offsets');
        return {
          outputs: { values, indices, preacts: pre.relu().named('preacts'), rows, offsets },
          save: { input, weight, bias, indices, rows, offsets, pre: slotPre, theta, threshold },
        };
      },
      backward: {
        input: (b, s, g) => gradInput(b, savedEntries(s), s.weight!, passed(s, g.values)),
        weight: (b, s, g) => gradWeight(b, savedEntries(s), s.weight!, s.input!, passed(s, g.values), backward),
        bias: (b, s, g) => gradBias(savedEntries(s), b.zerosLike(s.bias!).named('grad_bias'), passed(s, g.values)),
        threshold: (b, s, g, { bandwidth }) => {
          const kernel = rectangle(s.pre!.sub(s.theta!).div(bandwidth), g.values);
          const perSlot = s.theta!.div(bandwidth).neg().mul(kernel).mul(g.values).named('grad_theta_slots');
          return gradBias(savedEntries(s), b.zerosLike(s.threshold!).named('grad_threshold'), perSlot);
        },
      },
      inferShapes: (t) => ({ preacts: t.input.shape?.[0] !== undefined && t.weight.shape?.[0] !== undefined ? { shape: [t.input.shape[0], t.weight.shape[0]] } : {}, indices: { dtype: 'int64' }, rows: { dtype: 'int64' }, offsets: { dtype: 'int64' } }),
    });
    encoders.set(backward, fn);
  }
  return fn;
}

/**
 * StepFunction over the whole [N, M] of f, summed per token and averaged: forward, the count of
 * entries with f > theta; backward, d theta = -(1 / bandwidth) * rect((f - theta) / bandwidth).
 * f is zero outside the slots, so the entries there are counted per latent (N - its slots) at
 * f = 0 rather than visited.
 */
const JumpL0 = defineAutogradFunction({
  name: 'JumpReLUL0',
  tensorInputs: ['threshold', 'values', 'indices'],
  scalarInputs: ['tokens', 'bandwidth'],
  outputs: ['l0'],
  forward(f, { threshold, values, indices }, { tokens }) {
    const theta = threshold.select(indices).named('slot_theta');
    const inSlots = values.gt(theta).typeAs(values).sum().named('counted_in_slots');
    const elsewhere = f.fullLike(threshold, tokens).sub(indices.flatten().bincount(threshold.size(0)).typeAs(threshold)).named('entries_elsewhere');
    const outside = elsewhere.mul(threshold.lt(0).typeAs(threshold)).sum().named('counted_elsewhere');
    return { outputs: { l0: inSlots.add(outside).div(tokens).named('l0') }, save: { threshold, values, indices, elsewhere } };
  },
  backward: {
    threshold: (b, s, g, { tokens, bandwidth }) => {
      const theta = s.threshold!.select(s.indices!).named('slot_theta');
      const perSlot = rectangle(s.values!.sub(theta).div(bandwidth), s.values!).named('slot_kernel');
      const kernel = gradBias({ indices: s.indices! }, b.zerosLike(s.threshold!).named('kernel_sum'), perSlot);
      kernel.add_(s.elsewhere!.mul(rectangle(s.threshold!.neg().div(bandwidth), s.threshold!)));
      return kernel.mul(g.l0.div(tokens).div(bandwidth).neg()).named('grad_threshold');
    },
  },
});

export const jumprelu: Activation<'jumprelu', 'threshold'> = {
  name: 'jumprelu',
  summary: 'each latent above its own learned threshold (no k; --target_l0 or --l0_coefficient set the sparsity)',
  className: 'JumpReLU',
  check: () => undefined,
  // relu(pre) * (relu(pre) > theta): each token's latents above their thresholds, padded.
  select: (f, preacts, _k, own) => thresholdSelection(f, preacts, own.threshold),
  backward: 'positive-entries',
  padded: true,
  ragged: true,
  usesK: false,
  inference: 'per-latent-threshold',
  encoder: jumpEncoder,
  l0(f, kept, own, tokens: SymScalar, bandwidth) {
    return f.apply(JumpL0, { threshold: own.threshold, values: kept.values.detach(), indices: kept.indices }, { tokens, bandwidth }).l0;
  },
  params: [
    {
      name: 'threshold',
      shape: (numLatents) => [numLatents],
      init: (g, { encoderBias }) => g.fullLike(encoderBias, INIT_THRESHOLD),
    },
  ],
};
