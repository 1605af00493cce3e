import { z } from 'zod';
import { OutputOptionsShape } from './output.js';

/**
 * Options of `sparsify explore CODERS [MODEL] [DATASET]`. The coders, model and data are
 * found as `sparsify eval` finds them (held-out rows of the run's data by default).
 */
export const ExploreOptionsSchema = z
  .object({
    coders: z.string().min(1).describe('A run directory, a coder directory, or a Hub repo of coders'),
    model: z.string().min(1).optional().describe("Model name on the Hub, or a local path (default: the run's)"),
    dataset: z.string().min(1).optional().describe("Dataset name, local path, saved dataset or .bin tokens (default: the run's)"),
    hookpoints: z.array(z.string().min(1)).default([]).describe('Explore only the coders whose names match these patterns (fnmatch) (default: all)'),
    maxTokens: z.number().int().positive().default(100_000).describe('Cache at most this many tokens (whole rows)'),
    batchSize: z.number().int().positive().default(16).describe('Sequences per batch of the cache pass'),
    ctxLen: z.number().int().positive().optional().describe("Context length (default: the run's)"),
    split: z.string().min(1).optional().describe("Dataset split (default: the run's; another split is read from its first row)"),
    excludeTokens: z.array(z.number().int()).optional().describe("Token ids whose activations count as zero, besides the special tokens (default: the run's)"),
    seed: z.number().int().nonnegative().default(0).describe('Seed of the interval samples'),
    cacheDir: z.string().min(1).optional().describe('Where the latent cache goes (default: CODERS/explore, or ./explore for Hub coders)'),
    rebuild: z.boolean().default(false).describe('Build the cache again even when one for these coders and settings exists'),
    out: z.string().min(1).optional().describe('Write the explorer as a static site to this folder (opens from file://) instead of serving it'),
    port: z.number().int().min(0).max(65535).default(0).describe('Port to serve on (default: a free one)'),
    host: z.string().min(1).default('127.0.0.1').describe('Address to serve on (default: this machine only)'),
    open: z.boolean().default(true).describe('Open the explorer in a browser'),
    hfToken: z.string().optional().describe('Hugging Face token'),
    revision: z.string().optional().describe('Model revision'),
    ...OutputOptionsShape,
  })
  .strict();

export type ExploreOptions = z.output<typeof ExploreOptionsSchema>;
