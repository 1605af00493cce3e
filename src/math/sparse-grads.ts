/**
 * The gradient kernels the encoders and decoders share: given the gradient at each kept entry
 * of a selection (latent `indices`, in rows [N, K] or ragged [T]: src/activations/activation.ts),
 * the input's, the weight's and the bias's. Not here: which gradient reaches an entry (each
 * encoder's rule).
 */
import type { ProgramBuilder, SymScalar, SymTensor } from '../kernels/index.js';
import { BLOCK_D, BLOCK_P, ENTRY_DOTS, SEGMENT_ROW_SUMS } from './segment-kernels.js';

/**
 * How the weight gradients of the encoder and decoder are computed.
 * - `index_add`: the reference's kernels (an `[N*k, D]` buffer of contributions added row by
 *   row; torch's embedding_bag backward for the decoder): bit-identical to the reference on CPU.
 * - `gemm`: the selected gradients scattered into a dense `[N, M]` matrix (in the forward's
 *   precision: bf16 under autocast), then one matrix product per weight, which runs on tensor
 *   cores with no atomics. The same math in another summation order.
 * - `segment`: Triton kernels over the selected entries only (sorted by latent; one program per
 *   latent's segment, fp32 sums): no `[N, M]` scratch, no atomics. CUDA (or TRITON_INTERPRET=1).
 */
export type SparseBackward = 'index_add' | 'gemm' | 'segment';

/** The suffix of an autograd function's name for its weight-gradient kernels (none for the reference's). */
export const backwardSuffix = (backward: SparseBackward): string => ({ index_add: '', gemm: 'Gemm', segment: 'Segment' })[backward];

/** Where a selection's entries are: their latents, and for a ragged one its `RaggedRows` (each entry's token, each token's first entry). */
export interface Entries {
  indices: SymTensor;
  ragged?: { rows: SymTensor; offsets: SymTensor };
}

/** The entries an autograd function saved for its backward (`indices`, and a ragged selection's `rows` and `offsets`). */
export const savedEntries = (saved: Record<string, SymTensor | undefined>): Entries => ({
  indices: saved.indices!,
  ...(saved.rows ? { ragged: { rows: saved.rows, offsets: saved.offsets! } } : {}),
});

/**
 * S^T y for the sparse [N, M] matrix S whose entries are `values` at `at`: S made dense in a
 * reused zero matrix (in the values' precision), one matrix product, then the zeros restored.
 * Returned in `like`'s dtype.
 */
export function sparseTransposedProduct(b: ProgramBuilder, at: Entries, values: SymTensor, y: SymTensor, like: SymTensor): SymTensor {
  const dense = b.zeroScratch(y.size(0), like.size(0), values).named('dense');
  // Added, not set: a padded selection's unused slots (value 0) may repeat an index.
  if (at.ragged) dense.addAt2_(at.ragged.rows, at.indices, values);
  else dense.scatterAdd_(1, at.indices, values);
  const product = dense.mT.matmul(y.typeAs(dense)).typeAs(like).named('product');
  if (at.ragged) dense.setAt2_(at.ragged.rows, at.indices, b.zerosLike(values));
  else dense.scatter_(1, at.indices, 0);
  return product;
}

/** Sum over each token's entries of `values` times their rows of `table` (an embedding bag, one bag per token). */
export function entryBags(b: ProgramBuilder, at: Entries, table: SymTensor, values: SymTensor): SymTensor {
  return at.ragged ? b.embeddingBags(at.indices, table, at.ragged.offsets, values) : b.embeddingBag(at.indices, table, values);
}

/** d input = sum over the selected latents of grad * W[idx] (an embedding bag). */
export const gradInput = (b: ProgramBuilder, at: Entries, weight: SymTensor, grad: SymTensor): SymTensor => entryBags(b, at, weight, grad.typeAs(weight)).named('grad_input');

/** d b[idx] += grad, into `zeros` (shaped and typed as the bias). */
export function gradBias(at: Entries, zeros: SymTensor, grad: SymTensor): SymTensor {
  zeros.indexAdd_(0, at.indices.flatten(), grad.flatten().typeAs(zeros));
  return zeros;
}

/**
 * d W[idx] += grad * input, accumulated per selected latent, by either kernel. A ragged
 * selection's `index_add` is the same sums as one embedding bag per latent over the inputs of
 * its entries' tokens (the entries sorted by latent): no [T, D] buffer of contributions.
 */
export function gradWeight(b: ProgramBuilder, at: Entries, weight: SymTensor, input: SymTensor, grad: SymTensor, backward: SparseBackward): SymTensor {
  if (backward === 'gemm') return sparseTransposedProduct(b, at, grad, input, weight);
  if (backward === 'segment') return segmentedTransposedProduct(b, at, grad, input, weight).named('grad_weight');
  if (at.ragged) {
    const byLatent = at.indices.sort().indices.named('by_latent');
    const counts = at.indices.bincount(weight.size(0)).named('latent_counts');
    const offsets = counts.cumsum(0).sub(counts).named('latent_offsets');
    const tokens = at.ragged.rows.select(byLatent).named('latent_tokens');
    return b.embeddingBags(tokens, input, offsets, grad.select(byLatent).typeAs(input)).typeAs(weight).named('grad_weight');
  }
  const out = b.zerosLike(weight).named('grad_weight');
  // Each slot's gradient times its token's input, [N, K, D].
  const contributions = grad.unsqueeze(2).mul(input.unsqueeze(1)).named('contributions');
  out.indexAdd_(0, at.indices.flatten(), contributions.reshape(-1, input.size(-1)).typeAs(weight));
  return out;
}

/** Each entry's token: a ragged selection's rows, or for rows [N, K] the row of each slot. */
function entryTokens(b: ProgramBuilder, at: Entries): SymTensor {
  return at.ragged ? at.ragged.rows : b.arange(0, at.indices.size(0), 1, at.indices).repeatInterleave(at.indices.size(1)).named('entry_tokens');
}

/** How many blocks of `block` cover n. */
const blocks = (n: SymScalar, block: number): SymScalar => n.add(block - 1).floorDiv(block);

/**
 * S^T y for the sparse [N, M] matrix S whose entries are `values` at `at` (the weight
 * gradients: S the selected gradients and y the inputs, or S the acts and y the output's
 * gradient), shaped and typed as `like` [M, D]: the entries sorted by latent, one Triton
 * program per latent and block of columns.
 */
export function segmentedTransposedProduct(b: ProgramBuilder, at: Entries, values: SymTensor, y: SymTensor, like: SymTensor): SymTensor {
  const latents = at.indices.flatten().named('entry_latents');
  const order = latents.sort().indices.named('by_latent');
  const tokens = entryTokens(b, at).select(order).contiguous().named('segment_tokens');
  const weights = values.flatten().select(order).contiguous().named('segment_weights');
  const m = like.size(0);
  const counts = latents.bincount(m).named('latent_counts');
  const starts = b.zeros([m.add(1)], { dtype: 'int64', device: latents }).named('segment_starts');
  starts.narrow(0, 1, m).copy_(counts.cumsum(0));
  const rows = y.contiguous().named('segment_rows');
  // Every row is written (a latent with no entries gets zeros).
  const out = b.zerosLike(like).named('segment_product');
  const d = rows.size(1);
  b.launchTriton(SEGMENT_ROW_SUMS, [m, blocks(d, BLOCK_D)], { out, rows, w: weights, tok: tokens, starts, D: d, BLOCK_D, BLOCK_P });
  return out;
}

/** Each entry's a[token] . table[latent] (the decoder's value gradients, dy W_dec^T at the entries), shaped and typed as `like` (the values). */
export function entryDots(b: ProgramBuilder, at: Entries, a: SymTensor, table: SymTensor, like: SymTensor): SymTensor {
  const latents = at.indices.flatten().contiguous().named('entry_latents');
  const tokens = entryTokens(b, at).contiguous();
  const n = latents.size(0);
  const out = b.zerosLike(like).contiguous().named('entry_dots');
  const rows = a.contiguous().named('dot_rows');
  b.launchTriton(ENTRY_DOTS, [blocks(n, BLOCK_P)], { out, a: rows, ia: tokens, b: table.contiguous(), ib: latents, P: n, D: rows.size(1), BLOCK_D, BLOCK_P });
  return out;
}
