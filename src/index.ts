/**
 * sparsify for TypeScript: train and use k-sparse autoencoders and transcoders on the
 * activations of Hugging Face language models.
 */
export { SparseCoder, Sae, CrossLayerTranscoder, type CrossLayerForwardOutput, CoderFileError, type EncoderOutput, type ForwardOutput, type CreateOptions, type LoadOptions, type LoadManyOptions, type LoadFromHubOptions } from './coder/index.js';
export * from './config/index.js';
export { Tensor, PyObject, getRuntime, closeRuntime, onInterrupt, setupPython, SparsifyError, PythonError, PythonProcessError, type DType, type TensorData, type RuntimeInfo, type SetupPythonOptions } from './bridge/index.js';
export { HubError, uploadRun, type HubOptions, type UploadRunOptions, type UploadResult } from './hub/index.js';
export { CausalLM, gatherLatentActivations, bundledDefault, loadModel, loadTokenizer, type LanguageModel, type LoadModelOptions, type TrainableModel } from './model/index.js';
export { Trainer, type StepReport, type TrainerOptions, type CoderSlot, type CoderMetrics } from './trainer/index.js';
export { loadDataset, trainingRows, type TokenDataset, type LoadDatasetOptions, type TokenizerSource } from './data/index.js';
export { evaluate, evaluateCrossLayer, type CrossLayerEvalReport, EvalReportSchema, type EvalReport, type CoderEval, type SpliceMetrics, type EvalCoder, type EvaluateOptions } from './eval/index.js';
export { buildLatentCache, readLatentCache, serveExplorer, exportExplorer, explorerApp, LatentCache, LAYOUT as LATENT_CACHE_LAYOUT, type BuildLatentCacheOptions, type CacheIndex, type LatentRecord, type LatentExample, type LatentTable, type ServeExplorerOptions, type ExplorerServer } from './explore/index.js';
export { exportRun, inferenceRule, EXPORT_FORMAT_NAMES, type ExportFormatName, type ExportRunOptions } from './export/index.js';
export { generate, interventionLogits, type Generation, type GenerationModel, type Intervention } from './steer/index.js';
