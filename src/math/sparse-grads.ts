/**
 * The gradient kernels the encoders and decoders share: given the gradient at each kept slot
 * of a selection ([N, K] values at latent `indices`), the input's, the weight's and the bias's.
 * Not here: which gradient reaches a slot (each encoder's rule).
 */
import type { ProgramBuilder, SymTensor } from '../kernels/index.js';

/**
 * How the weight gradients of the encoder and decoder are computed.
 * - `index_add`: the reference's kernels (an `[N*k, D]` buffer of contributions added row by
 *   row; torch's embedding_bag backward for the decoder): bit-identical to the reference on CPU.
 * - `gemm`: the selected gradients scattered into a dense `[N, M]` matrix (in the forward's
 *   precision: bf16 under autocast), then one matrix product per weight, which runs on tensor
 *   cores with no atomics. The same math in another summation order.
 */
export type SparseBackward = 'index_add' | 'gemm';

/**
 * S^T y for the sparse [N, M] matrix S whose row n holds `values[n]` at `indices[n]`: S made
 * dense in a reused zero matrix (in the values' precision), one matrix product, then the zeros
 * restored. Returned in `like`'s dtype.
 */
export function sparseTransposedProduct(b: ProgramBuilder, indices: SymTensor, values: SymTensor, y: SymTensor, like: SymTensor): SymTensor {
  const dense = b.zeroScratch(values.size(0), like.size(0), values).named('dense');
  // Added, not set: a padded selection's unused slots (value 0) may repeat an index.
  dense.scatterAdd_(1, indices, values);
  const product = dense.mT.matmul(y.typeAs(dense)).typeAs(like).named('product');
  dense.scatter_(1, indices, 0);
  return product;
}

/** d input = sum over the selected latents of grad * W[idx] (an embedding bag). */
export const gradInput = (b: ProgramBuilder, indices: SymTensor, weight: SymTensor, grad: SymTensor): SymTensor =>
  b.embeddingBag(indices, weight, grad.typeAs(weight)).named('grad_input');

/** d b[idx] += grad, into `zeros` (shaped and typed as the bias). */
export function gradBias(indices: SymTensor, zeros: SymTensor, grad: SymTensor): SymTensor {
  zeros.indexAdd_(0, indices.flatten(), grad.flatten().typeAs(zeros));
  return zeros;
}

/** d W[idx] += grad * input, accumulated per selected latent, by either kernel. */
export function gradWeight(b: ProgramBuilder, indices: SymTensor, weight: SymTensor, input: SymTensor, grad: SymTensor, backward: SparseBackward): SymTensor {
  if (backward === 'gemm') return sparseTransposedProduct(b, indices, grad, input, weight);
  const out = b.zerosLike(weight).named('grad_weight');
  const contributions = grad.unsqueeze(2).mul(input.unsqueeze(1)).named('contributions');
  out.indexAdd_(0, indices.flatten(), contributions.reshape(-1, input.size(-1)).typeAs(weight));
  return out;
}

