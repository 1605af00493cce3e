/** Loading a Hugging Face model for training (the runtime holds it). */
import { getRuntime } from '../bridge/runtime.js';
import { modelConfig, modelLoad, tokenizerLoad, type HookWidth, type PyObject } from '../bridge/ops.js';
import { hubOffline } from '../hub/reach.js';
import { localPath } from '../util/paths.js';

/** What the trainer needs of a model. */
export interface TrainableModel {
  readonly model: PyObject;
  readonly device: string;
  /** Token ids must be below this (checked per batch, on the CPU). */
  readonly vocabSize?: number | undefined;
  /** It has a language-model head with loaded weights (ce/kl and spliced evaluation need one). */
  readonly lmHead?: boolean | undefined;
  /** BOS, EOS and pad ids from its config. */
  readonly specialTokenIds?: readonly number[] | undefined;
  /**
   * Set when `model` is a reader of cached activations (src/activation-cache), not a model: the
   * hookpoints it holds and their widths (there are no modules to look into).
   */
  readonly cached?: { readonly hookpoints: readonly string[]; readonly widths: Readonly<Record<string, HookWidth>> } | undefined;
}

export interface LoadModelOptions {
  /** 'base' (AutoModel, enough for fvu training) or 'causal_lm' (needed for ce/kl). */
  kind?: 'base' | 'causal_lm';
  /** Default: cuda when available, else cpu. */
  device?: string;
  /** Default 'auto': bf16 where the GPU supports it, else float32. */
  dtype?: 'auto' | 'float32' | 'bfloat16' | 'float16';
  revision?: string;
  token?: string;
  loadIn8bit?: boolean;
}

export interface LanguageModel extends TrainableModel {
  readonly name: string;
  readonly numHiddenLayers: number | undefined;
}

/**
 * Load a model by Hub name or local path.
 *
 * @example
 * const model = await loadModel('EleutherAI/pythia-160m', { kind: 'base' });
 */
export async function loadModel(nameOrPath: string, options: LoadModelOptions = {}): Promise<LanguageModel> {
  const rt = await getRuntime();
  const device = options.device ?? (rt.info.cuda ? 'cuda' : 'cpu');
  rt.checkDevice(device);
  const local = localPath(nameOrPath, 'model');
  const model = await modelLoad(
    {
      nameOrPath: local ?? nameOrPath,
      kind: options.kind ?? 'causal_lm',
      device,
      dtype: options.loadIn8bit ? 'float16' : (options.dtype ?? 'auto'),
      revision: options.revision,
      token: options.token,
      loadIn8bit: options.loadIn8bit ?? false,
      // A Hub name with the Hub out of reach: from the cache, at once (no half minute of retries).
      localFilesOnly: local === undefined && (await hubOffline()),
    },
    rt,
  );
  const cfg = await modelConfig(model);
  return {
    name: nameOrPath,
    model,
    device,
    numHiddenLayers: cfg.numHiddenLayers ?? undefined,
    vocabSize: cfg.vocabSize ?? undefined,
    lmHead: cfg.lmHead,
    specialTokenIds: cfg.specialTokenIds,
  };
}

/** The tokenizer of a model. */
export async function loadTokenizer(nameOrPath: string, options: { revision?: string; token?: string } = {}): Promise<PyObject> {
  const local = localPath(nameOrPath, 'tokenizer');
  return tokenizerLoad(local ?? nameOrPath, { ...options, localFilesOnly: local === undefined && (await hubOffline()) });
}
