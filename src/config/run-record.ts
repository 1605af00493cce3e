/**
 * A run's record (its `config.json`: the run's options and training config in snake_case, as
 * `sparsify` writes it) read back by what comes after training (eval, explore): typed, with
 * the data defaults for fields an older or hand-made record lacks, and nothing trusted that
 * has the wrong type.
 */
import { z } from 'zod';
import { DATA_DEFAULTS } from './data.js';

const lenient = <T extends z.ZodType>(t: T) => t.optional().catch(undefined);

const RecordFields = z
  .object({
    model: lenient(z.string()),
    dataset: lenient(z.string()),
    split: lenient(z.string()),
    ctx_len: lenient(z.number().int().positive()),
    text_column: lenient(z.string()),
    shuffle_seed: lenient(z.number().int()),
    data_args: lenient(z.string()),
    max_examples: lenient(z.number().int().positive().nullable()),
    holdout: lenient(z.number()),
    exclude_tokens: lenient(z.array(z.number().int())),
  })
  .loose();

/** What a run's record says of its model and data. */
export interface RunRecord {
  model: string | undefined;
  dataset: string | undefined;
  split: string;
  ctxLen: number;
  textColumn: string;
  shuffleSeed: number;
  dataArgs: string;
  /** The rows it trained on at most (undefined: no limit). */
  maxExamples: number | undefined;
  /** The share of the shuffled rows it left out at the end. */
  holdout: number;
  excludeTokens: number[];
}

/** Read a record's JSON (anything: what is not an object reads as an empty record). */
export function runRecordOf(json: unknown): RunRecord {
  const r = RecordFields.safeParse(json && typeof json === 'object' && !Array.isArray(json) ? json : {});
  const f = r.success ? r.data : {};
  return {
    model: f.model,
    dataset: f.dataset,
    split: f.split ?? DATA_DEFAULTS.split,
    ctxLen: f.ctx_len ?? DATA_DEFAULTS.ctxLen,
    textColumn: f.text_column ?? DATA_DEFAULTS.textColumn,
    shuffleSeed: f.shuffle_seed ?? DATA_DEFAULTS.shuffleSeed,
    dataArgs: f.data_args ?? DATA_DEFAULTS.dataArgs,
    maxExamples: f.max_examples ?? undefined,
    holdout: f.holdout ?? DATA_DEFAULTS.holdout,
    excludeTokens: f.exclude_tokens ?? [],
  };
}
