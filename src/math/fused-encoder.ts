/**
 * The "fused encoder" (sparsify/fused_encoder.py: FusedEncoder): relu(x W^T + b), then the
 * activation's selection (src/activations), with the reference's hand-written backward. Gradients flow
 * only through the selected entries and, as in the reference, without the relu mask: a
 * selected entry whose pre-activation was clipped to 0 still passes gradient. The
 * pre-activations pass none.
 */
import { activation as activationOf, type Activation, type ActivationName } from '../activations/index.js';
import { KernelBuildError, defineAutogradFunction, type AutogradFunction, type ProgramBuilder, type ScalarLike, type SymScalar, type SymTensor } from '../kernels/index.js';
import { backwardSuffix, entryBags, entryDots, gradBias, gradInput, gradWeight, savedEntries, segmentedTransposedProduct, sparseTransposedProduct, type Entries, type SparseBackward } from './sparse-grads.js';

/** The encoders' outputs: the selection (a ragged one's `rows` and `offsets` too) and the relu'd pre-activations. */
type Outputs = 'values' | 'indices' | 'preacts' | 'rows' | 'offsets';
type Encoder = AutogradFunction<'input' | 'weight' | 'bias', 'k', Outputs>;
type CentredEncoder = AutogradFunction<'x' | 'b_dec' | 'weight' | 'bias', 'k', Outputs>;

export type { SparseBackward } from './sparse-grads.js';

/**
 * relu(x W^T + b), then the activation's selection with latent indices. The gemm kernels
 * fuse the bias and relu into the matrix product (`addmm_relu`).
 */
function select(f: ProgramBuilder, input: SymTensor, weight: SymTensor, bias: SymTensor, k: SymScalar, activation: Activation, backward: SparseBackward) {
  const preacts = (backward === 'gemm' ? f.linearRelu(input, weight, bias) : f.linear(input, weight, bias).relu()).named('preacts');
  const { values, indices, ragged } = activation.select(f, preacts, k, {});
  const where = ragged ? { rows: ragged.rows.named('rows'), offsets: ragged.offsets.named('offsets') } : {};
  return { values: values.named('values'), indices: indices.named('indices'), preacts, ...where } as Record<Outputs, SymTensor>;
}

/** The outputs an activation's encoder returns, and those that carry no gradient. */
const outputsOf = (activation: Activation) => ({
  outputs: (activation.ragged ? ['values', 'indices', 'preacts', 'rows', 'offsets'] : ['values', 'indices', 'preacts']) as Outputs[],
  nonDifferentiable: (activation.ragged ? ['indices', 'rows', 'offsets'] : ['indices']) as Outputs[],
});

/** What the backward needs to know of where the selection's entries are (saved by the forward). */
const entriesSaved = (activation: Activation, outputs: Record<Outputs, SymTensor>): Record<string, SymTensor> =>
  activation.ragged ? { indices: outputs.indices, rows: outputs.rows, offsets: outputs.offsets } : { indices: outputs.indices };


/**
 * The gradient of the kept values as it reaches the pre-activations: as it is for every slot
 * ('kept-entries', the reference's rule), or only for slots whose value is above zero
 * ('positive-entries': autograd of the relu, and no gradient into a padded row's unused slots).
 */
function keptGradient(activation: Activation, saved: Record<string, SymTensor | undefined>, grad: SymTensor): SymTensor {
  switch (activation.backward) {
    case 'kept-entries':
      return grad;
    case 'positive-entries':
      return grad.mul(saved.values!.gt(0).typeAs(grad)).named('grad_kept');
  }
}

/** A padded selection's unused slots must pass no gradient: only the positive-entries rule does that. */
function checkRule(activation: Activation): void {
  // Parameters of its own would get no gradient here: such an activation brings its own encoder.
  if (activation.params.length) throw new KernelBuildError(`activation ${activation.name} has parameters of its own (${activation.params.map((p) => p.name).join(', ')}): it needs its own encoder`);
  if (activation.padded && activation.backward !== 'positive-entries') throw new KernelBuildError(`activation ${activation.name}: a padded selection needs the 'positive-entries' gradient rule`);
}

/** What the forward saves for the backward, by the activation's rule. */
const savedForRule = (activation: Activation, values: SymTensor): Record<string, SymTensor> => (activation.backward === 'positive-entries' ? { values } : {});

function fusedEncoder(activation: Activation, backward: SparseBackward): Encoder {
  checkRule(activation);
  const base = `FusedEncoder${activation.className}`;
  return defineAutogradFunction({
    name: `${base}${backwardSuffix(backward)}`,
    tensorInputs: ['input', 'weight', 'bias'],
    scalarInputs: ['k'],
    ...outputsOf(activation),
    // The pre-activations pass no gradient: no [N, M] of zeros for them (the reference fills one;
    // the gradients are the same).
    materializeGrads: false,
    forward(f, { input, weight, bias }, { k }) {
      const outputs = select(f, input, weight, bias, k, activation, backward);
      return { outputs, save: { input, weight, bias, ...entriesSaved(activation, outputs), ...savedForRule(activation, outputs.values) } };
    },
    backward: {
      input: (b, s, g) => gradInput(b, savedEntries(s), s.weight!, keptGradient(activation, s, g.values)),
      weight: (b, s, g) => gradWeight(b, savedEntries(s), s.weight!, s.input!, keptGradient(activation, s, g.values), backward),
      bias: (b, s, g) => gradBias(savedEntries(s), b.zerosLike(s.bias!).named('grad_bias'), keptGradient(activation, s, g.values)),
    },
    inferShapes: (t, sc) => encoderShapes(activation, t.input, t.weight, sc.k),
  });
}

function encoderShapes(activation: Activation, input: SymTensor, weight: SymTensor, kArg: ScalarLike) {
  const n = input.shape?.[0];
  const m = weight.shape?.[0];
  const k = typeof kArg === 'number' ? kArg : 'k';
  // A ragged selection's length is known only when it runs.
  if (activation.ragged) {
    return { indices: { dtype: 'int64' as const }, rows: { dtype: 'int64' as const }, offsets: { dtype: 'int64' as const }, preacts: n !== undefined && m !== undefined ? { shape: [n, m] } : {} };
  }
  return {
    values: n !== undefined ? { shape: [n, k] } : {},
    indices: n !== undefined ? { shape: [n, k], dtype: 'int64' as const } : { dtype: 'int64' as const },
    preacts: n !== undefined && m !== undefined ? { shape: [n, m] } : {},
  };
}

/**
 * An SAE's encoder with the centring inside: relu((x - b_dec) W^T + b), then the selection,
 * with the gemm backward. b_dec's gradient through the centring is -(sum of the selected
 * gradients per latent) W, a vector-matrix product, so no `[N, D]` input gradient is
 * gathered unless x itself needs one (end-to-end training through earlier coders).
 */
function centredEncoderGemm(activation: Activation): CentredEncoder {
  checkRule(activation);
  return defineAutogradFunction({
    name: `CentredEncoder${activation.className}Gemm`,
    tensorInputs: ['x', 'b_dec', 'weight', 'bias'],
    scalarInputs: ['k'],
    ...outputsOf(activation),
    materializeGrads: false,
    forward(f, { x, b_dec, weight, bias }, { k }) {
      const centred = x.sub(b_dec).named('centred');
      const outputs = select(f, centred, weight, bias, k, activation, 'gemm');
      return { outputs, save: { centred, weight, bias, ...entriesSaved(activation, outputs), ...savedForRule(activation, outputs.values) } };
    },
    backward: {
      x: (b, s, g) => gradInput(b, savedEntries(s), s.weight!, keptGradient(activation, s, g.values)),
      b_dec: (_b, s, g) => {
        const perLatent = gradBias(savedEntries(s), s.weight!.newZeros([s.weight!.size(0)]).named('grad_per_latent'), keptGradient(activation, s, g.values));
        return perLatent.matmul(s.weight!).neg().named('grad_b_dec');
      },
      weight: (b, s, g) => gradWeight(b, savedEntries(s), s.weight!, s.centred!, keptGradient(activation, s, g.values), 'gemm'),
      bias: (b, s, g) => gradBias(savedEntries(s), b.zerosLike(s.bias!).named('grad_bias'), keptGradient(activation, s, g.values)),
    },
    inferShapes: (t, sc) => encoderShapes(activation, t.x, t.weight, sc.k),
  });
}

const encoders = new Map<string, Encoder | CentredEncoder>();
const memo = <T extends Encoder | CentredEncoder>(key: string, make: () => T): T => {
  if (!encoders.has(key)) encoders.set(key, make());
  return encoders.get(key) as T;
};

/**
 * The fused encoder of an activation (relu(input W^T + b), then its selection) with
 * `backward`'s weight gradients: a registered one by name, or any {@link Activation}.
 */
export function fusedEncoderOf(which: ActivationName | Activation, backward: SparseBackward): Encoder {
  const act = typeof which === 'string' ? activationOf(which) : which;
  return memo(`fused:${act.name}:${backward}`, () => fusedEncoder(act, backward));
}

/** An SAE's encoder with the centring inside (the gemm backward's b_dec gradient), for an activation. */
export function centredEncoderOf(which: ActivationName | Activation): CentredEncoder {
  const act = typeof which === 'string' ? activationOf(which) : which;
  return memo(`centred:${act.name}`, () => centredEncoderGemm(act));
}

/** A sparse decoder's weight-gradient kernels: the `gemm` ones or the `segment` (Triton) ones. */
type DecoderBackward = Exclude<SparseBackward, 'index_add'>;

/**
 * The decoder with a `gemm` or `segment` backward: sum of act * W_dec[idx] (an embedding bag)
 * forward, in the acts' precision (bf16 under autocast: half the rows' bytes to gather) summed
 * in fp32; backward, d acts = the picked entries of dy W_dec^T and d W_dec = A^T dy, A the
 * `[N, M]` matrix of the acts. `gemm`: A made dense in the acts' precision and dy W_dec^T
 * computed whole, on tensor cores; `segment`: both from the entries alone (Triton kernels: one
 * dot product per entry, one segment of entries per latent). In rows, or `ragged` (flat
 * `indices` and `acts` [T], each entry's token `rows` [T], each token's first entry `offsets`).
 */
function sparseDecoder(backward: DecoderBackward, ragged: boolean) {
  const kernel = backward === 'gemm' ? 'Gemm' : 'Segment';
  return defineAutogradFunction({
    name: `Decoder${kernel}${ragged ? 'Ragged' : ''}`,
    tensorInputs: ['indices', 'acts', 'table', 'rows', 'offsets'],
    scalarInputs: [],
    outputs: ['decoded'],
    forward(f, { indices, acts, table, rows, offsets }) {
      const lowp = table.typeAs(acts).named('table_lowp');
      const at: Entries = ragged ? { indices, ragged: { rows, offsets } } : { indices };
      const decoded = entryBags(f, at, lowp, acts).typeAs(table).named('decoded');
      return { outputs: { decoded }, save: { indices, acts, table, lowp, ...(ragged ? { rows, offsets } : {}) } };
    },
    backward: {
      acts: (b, s, g) => {
        const at = savedEntries(s);
        if (backward === 'segment') return entryDots(b, at, g.decoded, s.lowp!, s.acts!).named('grad_acts');
        const dense = g.decoded.typeAs(s.acts!).named('grad_out').matmul(s.lowp!.mT);
        return (ragged ? dense.select2(s.rows!, s.indices!) : dense.gather(1, s.indices!)).named('grad_acts');
      },
      table: (b, s, g) => (backward === 'segment' ? segmentedTransposedProduct : sparseTransposedProduct)(b, savedEntries(s), s.acts!, g.decoded, s.table!).named('grad_table'),
    },
    inferShapes: (t) => {
      const n = (ragged ? t.offsets : t.indices).shape?.[0];
      const d = t.table.shape?.[1];
      return { decoded: n !== undefined && d !== undefined ? { shape: [n, d] } : {} };
    },
  });
}

const decoders = new Map<string, ReturnType<typeof sparseDecoder>>();

/** The decoder autograd function of a `gemm` or `segment` backward, for a selection in rows or ragged (built once each). */
export function sparseDecoderOf(backward: DecoderBackward, ragged: boolean): ReturnType<typeof sparseDecoder> {
  const key = `${backward}:${ragged}`;
  if (!decoders.has(key)) decoders.set(key, sparseDecoder(backward, ragged));
  return decoders.get(key)!;
}
