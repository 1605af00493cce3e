/**
 * The sparse coder's math, written with the kernel builder and following the reference line
 * by line (sparsify/sparse_coder.py, fused_encoder.py): encode (around the activation's
 * selection), decode, the losses, decoder maintenance and initialisation. Functions that
 * build graph; they run nothing. Not here: the compiler (src/kernels), the activations
 * (src/activations), the optimizers (src/optimizers) and the programs that wrap this math
 * (src/coder, src/trainer).
 */
export * from './structure.js';
export * from './sparse-coder.js';
export { fusedEncoderOf, centredEncoderOf, sparseDecoderOf, type SparseBackward } from './fused-encoder.js';
