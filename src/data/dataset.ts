/** Training data: rows of token ids held by the runtime; TS decides which rows go where. */
import { getRuntime } from '../bridge/runtime.js';
import type { PyObject } from '../bridge/handles.js';

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
  /** Needed when the dataset has no input_ids column (a tokenizer handle). */
  tokenizer?: PyObject;
  ctxLen?: number;
  textColumn?: string;
  numProc?: number;
  shuffleSeed?: number;
  maxExamples?: number;
}

/**
 * Load a dataset by Hub name, local path, `save_to_disk` folder, or `.bin` token file, and
 * prepare it as the reference does: chunk_and_tokenize when untokenized, shuffle, truncate.
 *
 * @example
 * const data = await loadDataset('data/my-text', { tokenizer, ctxLen: 256 });
 */
export async function loadDataset(nameOrPath: string, options: LoadDatasetOptions = {}): Promise<TokenDataset> {
  const rt = await getRuntime();
  const out = await rt.call<{ rows: PyObject; num_rows: number; ctx_len: number }>('data.load', {
    name_or_path: nameOrPath,
    split: options.split ?? 'train',
    data_args: options.dataArgs ?? {},
    tokenizer: options.tokenizer ?? null,
    ctx_len: options.ctxLen ?? 2048,
    text_column: options.textColumn ?? 'text',
    num_proc: options.numProc ?? 1,
    shuffle_seed: options.shuffleSeed ?? 42,
    max_examples: options.maxExamples ?? null,
  });
  return { rows: out.rows, numRows: out.num_rows, ctxLen: out.ctx_len };
}
