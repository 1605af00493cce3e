import { z } from 'zod';
import { OutputOptionsShape } from './output.js';

/**
 * Options of `sparsify eval CODERS [MODEL] [DATASET]`. What is left unset comes from the
 * run's config.json (model, dataset, split, ctx_len, shuffle_seed, text column, data args).
 */
export const EvalOptionsSchema = z
  .object({
    coders: z.string().min(1).describe('A run directory, a coder directory, or a Hub repo of coders'),
    model: z.string().min(1).optional().describe("Model name on the Hub, or a local path (default: the run's)"),
    dataset: z.string().min(1).optional().describe("Dataset name, local path, saved dataset or .bin tokens (default: the run's)"),
    hookpoints: z.array(z.string().min(1)).default([]).describe('Evaluate only the coders whose names match these patterns (fnmatch) (default: all)'),
    maxTokens: z.number().int().positive().default(100_000).describe('Evaluate on at most this many tokens (whole rows)'),
    batchSize: z.number().int().positive().default(8).describe('Sequences per batch'),
    ctxLen: z.number().int().positive().optional().describe("Context length (default: the run's)"),
    split: z.string().min(1).optional().describe("Dataset split (default: the run's; another split is evaluated from its first row)"),
    splice: z.enum(['each', 'all', 'both']).default('each').describe('Spliced-in metrics per hookpoint, with every hookpoint spliced at once, or both'),
    encodeMode: z
      .enum(['auto', 'topk', 'threshold'])
      .default('auto')
      .describe(
        "How coders select latents: auto (by a coder's learned inference threshold when it has one, else its own selection), topk (its own selection: the k largest, group maxima, the batch's N*k largest), threshold (by the learned threshold; a coder without one is an error)",
      ),
    excludeTokens: z.array(z.number().int()).optional().describe("Token ids left out of every metric, besides the special tokens (default: the run's)"),
    out: z.string().min(1).optional().describe('Where the report goes (default: CODERS/eval.json; density.safetensors beside it)'),
    json: z.boolean().default(false).describe('Print the report as JSON only'),
    hfToken: z.string().optional().describe('Hugging Face token'),
    revision: z.string().optional().describe('Model revision'),
    ...OutputOptionsShape,
  })
  .strict();

export type EvalOptions = z.output<typeof EvalOptionsSchema>;
