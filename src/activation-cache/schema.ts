/**
 * The activation cache's index (`index.json`): what was cached, from which model and data, and
 * each shard's rows, size and sha256. Written after every shard with `complete: false`, and
 * with `complete: true` only when the last one is in.
 */
import { z } from 'zod';

export const CACHE_DTYPES = ['float32', 'bfloat16', 'float16'] as const;
export type CacheDType = (typeof CACHE_DTYPES)[number];
export const DTYPE_BYTES: Record<CacheDType, number> = { float32: 4, bfloat16: 2, float16: 2 };

export const ShardSchema = z.object({
  file: z.string(),
  /** Rows [start, end) of the cache (row i of the cache is row i of the prepared dataset). */
  start: z.number().int().nonnegative(),
  end: z.number().int().positive(),
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type Shard = z.infer<typeof ShardSchema>;

export const ActivationCacheIndexSchema = z.object({
  format: z.literal('sparsify-activations'),
  version: z.literal(1),
  complete: z.boolean(),
  created: z.string(),
  model: z.string(),
  dataset: z.string(),
  split: z.string(),
  ctx_len: z.number().int().positive(),
  /** Dataset preparation, so a run from the cache can say what it trains on. */
  shuffle_seed: z.number().int(),
  text_column: z.string().optional(),
  data_args: z.string().optional(),
  /**
   * The rows cached are the first `rows` of the prepared (shuffled) dataset of `dataset_rows`;
   * `holdout` is the share of them left uncached at the end (for evaluating on unseen rows).
   */
  dataset_rows: z.number().int().positive().optional(),
  holdout: z.number().min(0).optional(),
  rows: z.number().int().positive(),
  tokens: z.number().int().positive(),
  dtype: z.enum(CACHE_DTYPES),
  transcode: z.boolean(),
  /** Each hookpoint's output width (and input width when transcoding): tensors `out/<h>` and `in/<h>`. */
  hookpoints: z.record(z.string(), z.object({ output: z.number().int().positive(), input: z.number().int().positive().nullable() })),
  rows_per_shard: z.number().int().positive(),
  shards: z.array(ShardSchema),
});
export type ActivationCacheIndex = z.infer<typeof ActivationCacheIndexSchema>;

/** The settings that decide a cache's contents: a half-written cache resumes only under the same. */
export function cacheSettingsKey(
  i: Pick<ActivationCacheIndex, 'model' | 'dataset' | 'split' | 'ctx_len' | 'shuffle_seed' | 'text_column' | 'data_args' | 'rows' | 'dtype' | 'transcode' | 'hookpoints' | 'rows_per_shard'>,
): string {
  return JSON.stringify([i.model, i.dataset, i.split, i.ctx_len, i.shuffle_seed, i.text_column ?? null, i.data_args ?? null, i.rows, i.dtype, i.transcode, i.hookpoints, i.rows_per_shard]);
}

/** Bytes per row of a shard's data (activations, and the row's token ids as int32). */
export function bytesPerRow(i: Pick<ActivationCacheIndex, 'ctx_len' | 'dtype' | 'hookpoints'>): number {
  const widths = Object.values(i.hookpoints).reduce((n, w) => n + w.output + (w.input ?? 0), 0);
  return i.ctx_len * (widths * DTYPE_BYTES[i.dtype] + 4);
}
