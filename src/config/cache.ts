import { z } from 'zod';
import { OutputOptionsShape } from './output.js';
import { DataOptionsShape } from './data.js';

/**
 * Options of `sparsify cache [MODEL] [DATASET] --out DIR`: which activations to write, of
 * which rows (the data prepared as for training), in which dtype and shard size.
 */
export const CacheOptionsSchema = z
  .object({
    model: z.string().min(1).optional().describe('Model name on the Hub, or a local path (default: the bundled tiny model)'),
    dataset: z.string().min(1).optional().describe('Dataset name, local path, saved dataset, or .bin token file (default: the bundled text with the bundled model)'),
    out: z.string().min(1).describe('Folder the cache goes to (an unfinished cache there is resumed)'),
    hookpoints: z.array(z.string().min(1)).default([]).describe('Module name patterns to cache (fnmatch) (default: the layers)'),
    layers: z.array(z.number().int()).default([]).describe('Layer indices to cache (default: all)'),
    layerStride: z.number().int().positive().default(1).describe('Cache every layer_stride-th hookpoint'),
    transcode: z.boolean().default(false).describe("Also cache each module's input (for training transcoders)"),
    dtype: z.enum(['float32', 'bfloat16', 'float16']).default('float32').describe('Stored dtype (float32 trains coders bit-identical to an online run)'),
    maxTokens: z.number().int().positive().optional().describe('Cache at most this many tokens (whole rows) (default: every row)'),
    maxExamples: z.number().int().positive().optional().describe('Cache at most this many rows'),
    batchSize: z.number().int().positive().default(8).describe('Sequences per forward pass'),
    shardMb: z.number().positive().default(512).describe('Approximate size of each shard file in MiB'),
    ...DataOptionsShape,
    holdout: DataOptionsShape.holdout.describe('Share of the (shuffled) rows left out of the cache, the last ones, for evaluating coders trained from it'),
    hfToken: z.string().optional().describe('Hugging Face token'),
    revision: z.string().optional().describe('Model revision'),
    ...OutputOptionsShape,
  })
  .strict();

export type CacheOptions = z.output<typeof CacheOptionsSchema>;
