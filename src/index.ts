/**
 * sparsify for TypeScript: train and use k-sparse autoencoders and transcoders on the
 * activations of Hugging Face language models.
 */
export { SparseCoder, Sae, type EncoderOutput, type ForwardOutput, type CreateOptions, type LoadOptions, type LoadManyOptions, type LoadFromHubOptions } from './coder/sparse-coder.js';
export { CoderFileError } from './coder/files.js';
export * from './config/index.js';
export { Tensor, PyObject, getRuntime, closeRuntime, onInterrupt, SparsifyError, PythonError, PythonProcessError, type DType, type TensorData, type RuntimeInfo } from './bridge/index.js';
export { HubError, type HubOptions } from './hub/download.js';
export { CausalLM, gatherLatentActivations } from './model/causal-lm.js';
export { Trainer, type StepReport, type TrainerOptions, type CoderSlot } from './trainer/trainer.js';
export { loadDataset, type TokenDataset, type LoadDatasetOptions } from './data/dataset.js';
export { loadModel, loadTokenizer, type LanguageModel, type LoadModelOptions, type TrainableModel } from './model/language-model.js';
