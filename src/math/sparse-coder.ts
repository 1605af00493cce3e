/**
 * The sparse coder's math, as the reference computes it (sparsify/sparse_coder.py:
 * SparseCoder), written with the kernel builder. These functions build graph, not run it: the
 * coder API wraps them in small programs and the trainer inlines them into its step programs.
 */
import { activation, thresholdSelection, type ActivationParamName, type LatentSelection, type RaggedRows } from '../activations/index.js';
import { KernelBuildError, type ProgramBuilder, type SymObject, type SymScalar, type SymTensor } from '../kernels/index.js';
import { centredEncoderOf, fusedEncoderOf, sparseDecoderOf, type SparseBackward } from './fused-encoder.js';
import { groupParts, matryoshkaLoss } from './matryoshka.js';
import { paramNames, type CoderParams, type CoderParamName, type CoderStructure } from './structure.js';

/**
 * What encode gives: the selected latents (a `LatentSelection` of src/activations: values
 * and indices [N, K], value 0 in unused slots; or, for training's selection of a ragged
 * activation, flat with `ragged`) and every pre-activation [N, M]. `T` is SymTensor in
 * programs, Tensor for the API's results (always in rows).
 */
export interface EncoderOutput<T = SymTensor> {
  topActs: T;
  topIndices: T;
  preActs: T;
  ragged?: RaggedRows<T>;
}

/** The selection an encoder output holds. */
export const selectionOf = (out: EncoderOutput): LatentSelection => ({ values: out.topActs, indices: out.topIndices, ...(out.ragged ? { ragged: out.ragged } : {}) });

/**
 * How encode selects. 'train': as training does, with the fused encoder's backward. 'infer':
 * as inference does: by the learned threshold when the coder has learned one, else as
 * 'selection'. 'selection': the activation's own inference selection (the same as training's
 * for topk, groupmax and batchtopk). 'threshold': `pre * (pre > theta)` by the learned threshold.
 */
export type EncodeMode = 'train' | 'infer' | 'selection' | 'threshold';

/**
 * `SparseCoder.encode`: SAEs subtract b_dec first; transcoders do not. `mode`: see
 * {@link EncodeMode}.
 */
export function encode(
  g: ProgramBuilder,
  params: CoderParams,
  x: SymTensor,
  k: SymScalar | number,
  s: Pick<CoderStructure, 'activation' | 'transcode' | 'inferenceThreshold' | 'bandwidth'>,
  backward: SparseBackward = 'index_add',
  mode: EncodeMode = 'train',
): EncoderOutput {
  const act = activation(s.activation);
  const named = (out: { values: SymTensor; indices: SymTensor; preacts: SymTensor; ragged?: RaggedRows }): EncoderOutput => ({
    topActs: out.values.named('top_acts'),
    topIndices: out.indices.named('top_indices'),
    preActs: out.preacts.named('pre_acts'),
    ...(out.ragged ? { ragged: out.ragged } : {}),
  });
  // The shared encoders' outputs; a ragged activation's carry where its entries belong.
  const fused = (out: Record<'values' | 'indices' | 'preacts' | 'rows' | 'offsets', SymTensor>): EncoderOutput =>
    named({ values: out.values, indices: out.indices, preacts: out.preacts, ...(act.ragged ? { ragged: { rows: out.rows, offsets: out.offsets } } : {}) });
  const weight = params.get('encoder.weight');
  const bias = params.get('encoder.bias');
  const own = Object.fromEntries(act.params.map((p) => [p.name, params.get(p.name)])) as Record<ActivationParamName, SymTensor>;
  if (mode === 'train' && !act.encoder && backward === 'gemm' && !s.transcode) {
    return fused(g.apply(centredEncoderOf(s.activation), { x, b_dec: params.get('b_dec'), weight, bias }, { k }));
  }
  const input = s.transcode ? x : x.sub(params.get('b_dec')).named('centered');
  if (mode === 'train' && act.encoder) {
    if (s.bandwidth === undefined) throw new KernelBuildError(`activation ${act.name} trains with a bandwidth; the coder structure has none`);
    return fused(g.apply(act.encoder(backward), { input, weight, bias, ...own }, { k, bandwidth: s.bandwidth }));
  }
  const byThreshold = mode === 'threshold' || (mode === 'infer' && s.inferenceThreshold);
  // Training's selection, and inference's where it is the same (the shared fused encoder).
  if (mode === 'train' || (!byThreshold && !act.infer && !act.encoder)) {
    return fused(g.apply(fusedEncoderOf(s.activation, backward), { input, weight, bias }, { k }));
  }
  const preacts = g.linear(input, weight, bias).relu().named('preacts');
  const ownSelection = (): LatentSelection => (act.infer ?? act.select)(g, preacts, k, own);
  if (!byThreshold) return named({ ...ownSelection(), preacts });
  const theta = params.get('threshold');
  if (mode === 'threshold') return named({ ...thresholdSelection(g, preacts, theta), preacts });
  // A threshold is learned after threshold_start_step steps; until then it is -1 and the
  // coder encodes by its own selection.
  const rows = (sel: LatentSelection) => ({ values: sel.values, indices: sel.indices });
  return named({ ...g.ifElse(theta.item().lt(0).not(), () => rows(thresholdSelection(g, preacts, theta)), () => rows(ownSelection())), preacts });
}

/**
 * `SparseCoder.decode`: sum of act * W_dec[idx] (an embedding bag, mode sum) plus b_dec, for a
 * selection in rows or ragged. The reference passes `W_dec.mT` to its decoder, which takes
 * `.mT` again; the two transposes are kept so that autograd sums W_dec's gradient
 * contributions (decode, AuxK, Multi-TopK) in the reference's order.
 */
export function decode(g: ProgramBuilder, params: CoderParams, selection: LatentSelection, options: { bias?: boolean; backward?: SparseBackward } = {}): SymTensor {
  const sum = decodeRows(g, params.get('W_dec'), selection, options.backward);
  return (options.bias === false ? sum : sum.add(params.get('b_dec'))).named('decoded');
}

/**
 * The sum of act * table[idx] per row of a selection (no bias): decode's sparse product, for
 * any table of one row per latent (a cross-layer transcoder's decoders, targets side by side).
 */
export function decodeRows(g: ProgramBuilder, wDec: SymTensor, selection: LatentSelection, backward?: SparseBackward): SymTensor {
  const { values, indices, ragged } = selection;
  if (backward === 'gemm' || backward === 'segment') {
    const where = ragged ? { rows: ragged.rows, offsets: ragged.offsets } : { rows: g.none(), offsets: g.none() };
    return g.apply(sparseDecoderOf(backward, ragged !== undefined), { indices, acts: values, table: wDec, ...where }, {}).decoded;
  }
  const acts = values.typeAs(wDec);
  const table = wDec.mT.mT.named('W_dec_view');
  return ragged ? g.embeddingBags(indices, table, ragged.offsets, acts) : g.embeddingBag(indices, table, acts);
}

/** Loss options beyond the coder's config. */
export interface LossOptions {
  /**
   * Add b_dec to the AuxK reconstruction of the residual, as the reference does (default
   * true; its issue #132: a residual has no bias, so the corrected loss leaves it out).
   */
  auxkBias: boolean;
  /** How the weight gradients are computed (default `index_add`, the reference's kernels). */
  sparseBackward?: SparseBackward;
  /** A cross-layer transcoder's reconstruction loss (default `fvu`; src/math/cross-layer.ts). */
  crossLayerLoss?: 'fvu' | 'mse';
}

/** The reference's losses. */
export const REFERENCE_LOSSES: LossOptions = { auxkBias: true };

/** A short, identifier-safe tag for loss options (part of program names). */
export function lossTag(o: LossOptions): string {
  return (o.auxkBias ? '' : '_auxk_nobias') + (o.sparseBackward === 'gemm' ? '_gemm' : '') + (o.crossLayerLoss === 'mse' ? '_clt_mse' : '');
}

/**
 * The coder's output without losses: encode (as inference does unless `mode` says otherwise),
 * decode, and the skip connection, as in `SparseCoder.forward` (evaluation uses it: the k
 * selection, never Multi-TopK's 4k).
 */
export function reconstruct(g: ProgramBuilder, params: CoderParams, x: SymTensor, k: SymScalar | number, s: CoderStructure, mode: Exclude<EncodeMode, 'train'> = 'infer'): { recon: SymTensor; acts: SymTensor; indices: SymTensor } {
  const { topActs, topIndices } = encode(g, params, x, k, s, 'index_add', mode);
  let recon = decode(g, params, { values: topActs, indices: topIndices });
  if (s.skipConnection) {
    const wSkip = params.get('W_skip');
    recon = recon.add(x.typeAs(wSkip).matmul(wSkip.mT));
  }
  return { recon: recon.named('reconstruction'), acts: topActs, indices: topIndices };
}

/** What forward gives (the reference's ForwardOutput); `T` as in {@link EncoderOutput}. */
export interface ForwardOutput<T = SymTensor> {
  saeOut: T;
  latentActs: T;
  latentIndices: T;
  /** Where the latents' entries belong when they are ragged (training's selection of a ragged activation); the API's results are in rows. */
  latentRagged?: RaggedRows<T>;
  fvu: T;
  auxkLoss: T;
  multiTopkFvu: T;
}

/** What training reads of a forward besides its output: the k selection (Multi-TopK's output reports the 4k one). */
export interface TrainingForward extends ForwardOutput {
  kept: LatentSelection;
  /** What training minimises for the reconstruction: the fvu, or the Matryoshka loss over its prefixes. */
  reconstructionLoss: SymTensor;
  /** The activation's differentiable L0 estimate (mean active latents per token), where it trains towards one (jumprelu). */
  l0?: SymTensor;
}

/**
 * `SparseCoder.forward`: reconstruction of y (x when autoencoding) and its losses: fvu,
 * AuxK on dead latents when `deadMask` is given and marks some latent dead, and the
 * Multi-TopK fvu.
 */
export function forward(
  g: ProgramBuilder,
  params: CoderParams,
  x: SymTensor,
  y: SymTensor,
  deadMask: SymTensor | undefined,
  k: SymScalar | number,
  s: CoderStructure,
  losses: LossOptions = REFERENCE_LOSSES,
): TrainingForward {
  const backward = losses.sparseBackward ?? 'index_add';
  const encoded = encode(g, params, x, k, s, backward);
  const { topActs, topIndices, preActs } = encoded;
  const kept = selectionOf(encoded);
  const act = activation(s.activation);
  const own = Object.fromEntries(act.params.map((p) => [p.name, params.get(p.name)])) as Record<ActivationParamName, SymTensor>;
  const l0 = act.l0 && s.bandwidth !== undefined ? { l0: act.l0(g, kept, own, x.size(0), s.bandwidth).named('l0') } : {};
  // The denominator that puts every loss on the scale of y's variance.
  const totalVariance = y.sub(y.mean(0)).pow(2).sum().named('total_variance');
  const skip = (): SymTensor => {
    const wSkip = params.get('W_skip');
    return x.typeAs(wSkip).matmul(wSkip.mT).named('skip');
  };
  let saeOut: SymTensor;
  let matryoshka: SymTensor | undefined;
  if (s.matryoshka) {
    const parts = groupParts(g, params, kept, x.size(0), s.matryoshka.prefixes);
    const base = s.skipConnection ? skip().add(params.get('b_dec')) : params.get('b_dec');
    ({ saeOut, loss: matryoshka } = matryoshkaLoss(parts, base, y, totalVariance, s.matryoshka));
  } else {
    saeOut = decode(g, params, kept, { backward });
    if (s.skipConnection) saeOut = saeOut.add(skip());
  }
  saeOut.named('sae_out');
  const e = y.sub(saeOut).named('e');

  const auxkLoss = auxk(g, { preActs, e, y, totalVariance, deadMask, like: saeOut }, (dead) => decode(g, params, dead, { bias: losses.auxkBias, backward }));

  const fvu = e.pow(2).sum().div(totalVariance).named('fvu');
  const trained = { kept, reconstructionLoss: matryoshka ?? fvu, ...l0 };

  if (s.multiTopk) {
    // Multi-TopK: the reconstruction from the top 4k latents should be good too. As in the
    // reference, whose variables are reassigned here, the output then reports the 4k
    // selection and its reconstruction (so the trainer marks those 4k latents as fired).
    const top = preActs.topk(typeof k === 'number' ? 4 * k : k.mul(4), { sorted: false });
    const out = decode(g, params, top, { backward }).named('sae_out_4k');
    const multiTopkFvu = out.sub(y).pow(2).sum().div(totalVariance).named('multi_topk_fvu');
    return { saeOut: out, latentActs: top.values, latentIndices: top.indices, fvu, auxkLoss, multiTopkFvu, ...trained };
  }
  const multiTopkFvu = g.scalarTensor(saeOut, 0.0).named('multi_topk_fvu');
  return { saeOut, latentActs: topActs, latentIndices: topIndices, ...(kept.ragged ? { latentRagged: kept.ragged } : {}), fvu, auxkLoss, multiTopkFvu, ...trained };
}

/**
 * The AuxK loss (Appendix B.1 of the paper): the top ~half of the dead latents predict the
 * residual `e` through `decodeDead`; the loss is scaled down when only a few latents are dead.
 * 0 without a dead mask, or with no latent dead.
 */
export function auxk(
  g: ProgramBuilder,
  io: { preActs: SymTensor; e: SymTensor; y: SymTensor; totalVariance: SymTensor; deadMask: SymTensor | undefined; like: SymTensor },
  decodeDead: (dead: LatentSelection) => SymTensor,
): SymTensor {
  const { preActs, e, y, totalVariance, deadMask, like } = io;
  if (!deadMask) return g.scalarTensor(like, 0.0).named('auxk_loss');
  const dm = deadMask;
  return g.ifElse(
    g.isNone(dm).not(),
    () => {
      const numDead = dm.sum().int().named('num_dead');
      return g.ifElse(
        numDead.gt(0),
        () => {
          const kAux0 = y.size(-1).floorDiv(2);
          const scale = g.min(numDead.div(kAux0), g.float(1));
          const kAux = g.min(kAux0, numDead);
          // Living latents take no part.
          const auxkLatents = g.where(dm.leadingUnit, preActs, -Infinity).named('auxk_latents');
          const top = auxkLatents.topk(kAux, { sorted: false });
          const eHat = decodeDead({ values: top.values.named('auxk_acts'), indices: top.indices.named('auxk_indices') }).named('e_hat');
          const loss = eHat.sub(e.detach()).pow(2).sum();
          return { auxkLoss: loss.mul(scale).div(totalVariance) };
        },
        () => ({ auxkLoss: g.scalarTensor(like, 0.0) }),
      );
    },
    () => ({ auxkLoss: g.scalarTensor(like, 0.0) }),
  ).auxkLoss;
}

/**
 * A learned inference threshold's step (dictionary_learning's update_threshold): theta
 * <- beta * theta + (1 - beta) * the activation's statistic of the kept latents; the first
 * value (theta still -1) starts it. Data-parallel ranks average their statistics first, so
 * that every rank holds the same theta.
 */
export function updateThreshold(
  g: ProgramBuilder,
  params: CoderParams,
  kept: LatentSelection,
  s: Pick<CoderStructure, 'activation'>,
  step: { beta: SymScalar; ddp: SymScalar },
): void {
  const rule = activation(s.activation).learnedThreshold;
  if (!rule) return;
  g.noGrad(() => {
    const theta = params.get('threshold');
    const sample = rule.sample(g, kept).named('threshold_sample');
    g.when(step.ddp, () => g.allReduce_(sample, 'mean'));
    // 1 - beta in Python floats, as dictionary_learning computes it.
    const moved = theta.mul(step.beta).add(sample.mul(g.float(1).sub(step.beta))).named('threshold_moved');
    theta.copy_(g.where(theta.lt(0), sample, moved));
  });
}

/** `set_decoder_norm_to_unit_norm`: W_dec /= (row norm + eps), in place, without autograd. */
export function setDecoderNormToUnitNorm(g: ProgramBuilder, params: CoderParams): void {
  g.noGrad(() => {
    const wDec = params.get('W_dec');
    const norm = wDec.norm(1, true);
    wDec.div_(norm.add(g.eps(wDec)));
  });
}

/** `remove_gradient_parallel_to_decoder_directions`: grad_i -= (grad_i . W_i) W_i for each decoder row i. */
export function removeGradientParallelToDecoderDirections(g: ProgramBuilder, params: CoderParams): void {
  g.noGrad(() => {
    const wDec = params.get('W_dec');
    const grad = wDec.grad;
    g.when(g.isNone(grad).not(), () => {
      const parallel = g.einsum('ij,ij->i', grad, wDec).named('parallel_component');
      grad.sub_(g.einsum('i,ij->ij', parallel, wDec));
    });
  });
}

/**
 * A new coder's parameters, made as `SparseCoder.__init__` makes them: nn.Linear(D, M)'s
 * default init (after `torch.manual_seed(seed)` when a seed is given), zero encoder bias, W_dec
 * a copy of the encoder weight (SAE, row-normalised) or zeros (transcoder), b_dec zeros.
 */
export function initParams(
  g: ProgramBuilder,
  s: Pick<CoderStructure, 'transcode' | 'skipConnection' | 'normalizeDecoder' | 'activation' | 'inferenceThreshold'>,
  inputs: { seed: SymScalar | null; dIn: SymScalar; numLatents: SymScalar; device: SymObject; dtype: SymObject },
): CoderParams {
  // null: draw on from the generator as it is (the next of several coders made in a row).
  const seed = inputs.seed;
  if (seed !== null) g.when(g.isNone(seed).not(), () => g.manualSeed(seed));
  const { weight, bias } = g.nnLinear(inputs.dIn, inputs.numLatents, inputs.device, inputs.dtype);
  bias.zero_();
  const wDec = (s.transcode ? g.zerosLike(weight) : weight.clone()).named('W_dec');
  if (s.normalizeDecoder) {
    const norm = wDec.norm(1, true);
    wDec.div_(norm.add(g.eps(wDec)));
  }
  const bDec = g.zeros([inputs.dIn], { dtype: inputs.dtype, device: inputs.device }).named('b_dec');
  const entries: Partial<Record<CoderParamName, SymTensor>> = { 'encoder.weight': weight, 'encoder.bias': bias, W_dec: wDec, b_dec: bDec };
  if (s.skipConnection) entries.W_skip = g.zeros([inputs.dIn, inputs.dIn], { dtype: inputs.dtype, device: inputs.device }).named('W_skip');
  // The activation's own parameters, after the reference's (made without drawing random numbers first).
  for (const p of activation(s.activation).params) (entries as Record<string, SymTensor>)[p.name] = p.init(g, { encoderBias: bias }).named(p.name);
  for (const name of paramNames(s)) entries[name]!.requiresGrad_();
  // A learned inference threshold starts unset (-1, as dictionary_learning's), in fp32.
  if (s.inferenceThreshold) entries.threshold = g.full([], -1, 'float32', weight).named('threshold');
  return g.bundle(entries as Record<CoderParamName, SymTensor>).named('params');
}
