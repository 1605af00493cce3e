/**
 * The SparseCoder API: create, load (disk, Hub), encode, decode, forward and save SAEs and
 * transcoders, in the reference's file layout; and CrossLayerTranscoder, its cross-layer kin
 * (cross-layer.ts, its programs in cross-layer-programs.ts). Not here: training (src/trainer) and the math
 * itself (src/math).
 */
export { SparseCoder, Sae, type EncoderOutput, type ForwardOutput, type CreateOptions, type LoadOptions, type LoadManyOptions, type LoadFromHubOptions } from './sparse-coder.js';
export { CoderFileError, readCoderConfig, writeCoderDir, CFG_FILE, WEIGHTS_FILE } from './files.js';
export { findCoderDirs, findRunConfig, type CoderDirEntry } from './discover.js';
export { CrossLayerTranscoder, crossLayerUnsupported, isCrossLayerDir, type CrossLayerForwardOutput } from './cross-layer.js';
