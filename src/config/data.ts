/**
 * How a dataset is prepared (split, context length, text column, shuffle seed, worker
 * processes, load_dataset arguments, the share held out): one zod fragment that owns these defaults, shared by
 * training's run options, `sparsify cache`, `loadDataset` and the reader of a run's record.
 */
import { cpus } from 'node:os';
import { z } from 'zod';

/** The fields, each with its default and --help text. */
export const DataOptionsShape = {
  split: z.string().min(1).default('train').describe('Dataset split'),
  ctxLen: z.number().int().positive().default(2048).describe('Context length (tokens per row)'),
  textColumn: z.string().min(1).default('text').describe('Text column of the dataset'),
  shuffleSeed: z.number().int().nonnegative().default(42).describe('Seed for shuffling the dataset'),
  dataPreprocessingNumProc: z
    .number()
    .int()
    .positive()
    .default(Math.max(1, Math.floor(cpus().length / 2)))
    .describe('Processes for tokenizing the dataset'),
  dataArgs: z.string().default('').describe('Arguments for load_dataset, as "k=v,k2=v2"'),
  holdout: z.number().min(0).max(0.9).default(0).describe('Share of the (shuffled) rows left out of training, the last ones, for evaluation'),
};

export const DataOptionsSchema = z.object(DataOptionsShape);
export type DataOptions = z.output<typeof DataOptionsSchema>;

/** Every default, once. */
export const DATA_DEFAULTS: Readonly<DataOptions> = Object.freeze(DataOptionsSchema.parse({}));
