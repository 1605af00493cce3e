/**
 * Training data: datasets loaded and prepared as the reference prepares them, held by the
 * runtime as rows of token ids. Not here: which rows go into which batch (src/trainer).
 */
export { loadDataset, type TokenDataset, type LoadDatasetOptions } from './dataset.js';
export type { TokenizerSource } from '../bridge/ops.js';
export { trainingRows } from './split.js';
