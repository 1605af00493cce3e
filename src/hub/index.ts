/**
 * The Hugging Face Hub: downloading coder files into the Hugging Face cache (only the
 * hookpoints asked for), and reading them back offline; publishing a run (upload.ts, with its
 * model card); whether the Hub can be reached at all
 * (reach.ts: models, tokenizers and datasets come from the cache at once when it cannot). Not
 * here: fetching models and datasets, which transformers and datasets do in the runtime.
 */
export { downloadCoderFiles, HubError, type HubOptions } from './download.js';
export { hubOffline, hubEndpoint } from './reach.js';
export { uploadRun, hubToken, type UploadOptions as UploadRunOptions, type UploadResult } from './upload.js';
export { modelCard } from './model-card.js';
