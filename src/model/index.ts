/**
 * Language models and tokenizers held by the runtime: loading them for training, which of
 * their modules to hook (hookpoints.ts, for training and activation caches alike), and using
 * them with coders (hidden states, gathering latent activations). Not here: the hooks the
 * trainer installs (src/trainer, python/sparsify_runtime/hooks.py).
 */
export { loadModel, loadTokenizer, type LanguageModel, type LoadModelOptions, type TrainableModel } from './language-model.js';
export { CausalLM, gatherLatentActivations, type CausalLMOptions } from './causal-lm.js';
export { bundledDefault } from './bundled.js';
export { modelHookpoints, cachedHookpoints, resolveHookpoints, type HookpointRequest, type ModuleInfo } from './hookpoints.js';
