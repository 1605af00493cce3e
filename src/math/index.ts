/**
 * The sparse coder's math and the optimizers, written with the kernel builder and following
 * the reference line by line (sparsify/sparse_coder.py, fused_encoder.py, muon.py,
 * sign_sgd.py): encode, decode, the losses, decoder maintenance, initialisation, and the
 * per-parameter updates. Functions that build graph; they run nothing. Not here: the
 * compiler (src/kernels) and the programs that wrap this math (src/coder, src/trainer).
 */
export * from './structure.js';
export * from './sparse-coder.js';
export * from './optimizers.js';
export { FusedEncoderTopK, FusedEncoderGroupMax, FusedEncoderTopKGemm, FusedEncoderGroupMaxGemm, CentredEncoderTopKGemm, CentredEncoderGroupMaxGemm, DecoderGemm, type SparseBackward } from './fused-encoder.js';
