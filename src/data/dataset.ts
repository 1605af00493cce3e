/**
 * Data: datasets prepared as the reference prepares them (sparsify/data.py,
 * sparsify/__main__.py: load_artifacts), held by the runtime as rows of token ids; which rows
 * go into which batch is decided in TypeScript (the trainer). Not here: tokenizers and models
 * (src/model).
 */
import { dataLoad, type PyObject, type TokenizerSource } from '../bridge/ops.js';
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
  return dataLoad({
    nameOrPath: localPath(nameOrPath, 'dataset') ?? nameOrPath,
    split: options.split ?? DATA_DEFAULTS.split,
    dataArgs: options.dataArgs ?? {},
    tokenizer: options.tokenizer ?? null,
    ctxLen: options.ctxLen ?? DATA_DEFAULTS.ctxLen,
    textColumn: options.textColumn ?? DATA_DEFAULTS.textColumn,
    numProc: options.numProc ?? 1,
    shuffleSeed: options.shuffleSeed ?? DATA_DEFAULTS.shuffleSeed,
    maxExamples: options.maxExamples ?? null,
    vocabSize: options.vocabSize,
  });
}
