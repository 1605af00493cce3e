/**
 * Data: datasets prepared as the reference prepares them (sparsify/data.py,
 * sparsify/__main__.py: load_artifacts), held by the runtime as rows of token ids; which rows
 * go into which batch is decided in TypeScript (the trainer). Not here: tokenizers and models
 * (src/model).
 */
import { PyObject, dataLoad, type TokenizerSource } from '../bridge/ops.js';
import { hubOffline } from '../hub/reach.js';
import { DATA_DEFAULTS } from '../config/data.js';
import { localPath } from '../util/paths.js';

/** A dataset of fixed-length token rows (prepared, shuffled and truncated). */
export interface TokenDataset {
  /** The rows object in the runtime. */
  readonly rows: PyObject;
  readonly numRows: number;
  /** Tokens per row. */
  readonly ctxLen: number;
}

export interface LoadDatasetOptions {
  split?: string;
  /** Extra load_dataset arguments. */
  dataArgs?: Record<string, string | number | boolean>;
  /**
   * Needed when the dataset has no input_ids column: a tokenizer handle, or where to load one
   * (it is then loaded only if the data is text).
   */
  tokenizer?: PyObject | TokenizerSource;
  ctxLen?: number;
  textColumn?: string;
  numProc?: number;
  shuffleSeed?: number;
  maxExamples?: number;
  /** The model's vocabulary size: a token file's ids are checked against it when it loads. */
  vocabSize?: number;
}

/**
 * Load a dataset by Hub name, local path, `save_to_disk` folder, or `.bin` token file, and
 * prepare it as the reference does: chunk_and_tokenize when untokenized, shuffle, truncate.
 *
 * @example
 * const data = await loadDataset('data/my-text', { tokenizer, ctxLen: 256 });
 */
export async function loadDataset(nameOrPath: string, options: LoadDatasetOptions = {}): Promise<TokenDataset> {
  const local = localPath(nameOrPath, 'dataset');
  // Hub names with the Hub out of reach come from the cache, at once.
  const tokenizer = options.tokenizer;
  const source = tokenizer && !(tokenizer instanceof PyObject) ? { ...tokenizer, localFilesOnly: localPath(tokenizer.nameOrPath, 'tokenizer') === undefined && (await hubOffline()) } : (tokenizer ?? null);
  return dataLoad({
    nameOrPath: local ?? nameOrPath,
    split: options.split ?? DATA_DEFAULTS.split,
    dataArgs: options.dataArgs ?? {},
    tokenizer: source,
    ctxLen: options.ctxLen ?? DATA_DEFAULTS.ctxLen,
    textColumn: options.textColumn ?? DATA_DEFAULTS.textColumn,
    numProc: options.numProc ?? 1,
    shuffleSeed: options.shuffleSeed ?? DATA_DEFAULTS.shuffleSeed,
    maxExamples: options.maxExamples ?? null,
    vocabSize: options.vocabSize,
    offline: local === undefined && (await hubOffline()),
  });
}
