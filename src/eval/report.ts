/**
 * The evaluation report (eval.json): one zod schema, the source of its TypeScript types and
 * of the check that a file read back is one. Its metrics' fields come from the metric
 * registry (eval/metrics); their definitions are in README.md.
 */
import { z } from 'zod';
import { EvalOptionsSchema } from '../config/eval.js';
import { SpliceMetricsSchema, coderMetricShape } from './metrics/index.js';

export { DensityHistogramSchema, SpliceMetricsSchema } from './metrics/index.js';

const num = z.number();

/** One coder's metrics. */
export const CoderEvalSchema = z.object({
  hookpoint: z.string(),
  path: z.string().nullable(),
  d_in: z.number().int(),
  num_latents: z.number().int(),
  k: z.number().int(),
  transcode: z.boolean(),
  tokens: z.number().int(),
  ...coderMetricShape,
  splice: SpliceMetricsSchema.nullable(),
});

export const EvalReportSchema = z.object({
  version: z.literal(1),
  model: z.string(),
  dataset: z.string(),
  split: z.string().nullable(),
  ctx_len: z.number().int(),
  /** The rows evaluated, [start, end) of the prepared (shuffled) dataset of `of` rows. */
  rows: z.object({ start: z.number().int(), end: z.number().int(), of: z.number().int() }),
  /** Tokens whose activations were evaluated (special and excluded ones left out). */
  tokens: z.number().int(),
  /** Next-token positions scored for ce/kl (0 without a language-model head). */
  positions: z.number().int(),
  splice: z.enum(['each', 'all', 'both', 'none']),
  /** How the coders selected latents (`--encode_mode`; reports before it was recorded: auto). */
  encode_mode: EvalOptionsSchema.shape.encodeMode,
  excluded_token_ids: z.array(z.number().int()),
  coders: z.record(z.string(), CoderEvalSchema),
  /** Every hookpoint replaced at once (--splice all or both). */
  splice_all: SpliceMetricsSchema.nullable(),
  warnings: z.array(z.string()),
  seconds: num,
  finished: z.string(),
});

export type { DensityHistogram } from './metrics/index.js';
export type SpliceMetrics = z.infer<typeof SpliceMetricsSchema>;
export type CoderEval = z.infer<typeof CoderEvalSchema>;
export type EvalReport = z.infer<typeof EvalReportSchema>;
