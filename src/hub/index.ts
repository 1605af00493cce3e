/**
 * The Hugging Face Hub: downloading coder files into the Hugging Face cache (only the
 * hookpoints asked for), and reading them back offline. Not here: models and datasets, which
 * transformers and datasets fetch themselves in the runtime.
 */
export { downloadCoderFiles, HubError, type HubOptions } from './download.js';
