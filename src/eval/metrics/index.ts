/**
 * The evaluation metric registry: one file per metric (registry.ts lists them in report
 * order; metric.ts is the contract). The device sums evaluation accumulates, the report's
 * schema, training's eval log, the terminal table and the explorer's overview columns all
 * come from here. Not here: the passes that feed the sums (eval/programs.ts, evaluate.ts).
 */
import { z } from 'zod';
import type { CoderMetric, DeviceSum, SpliceMetric } from './metric.js';
import { CODER_METRICS, SPLICE_METRICS } from './registry.js';
import { TOKENS } from './sums.js';

export { CODER_METRICS, SPLICE_METRICS } from './registry.js';
export { FIRE_COUNTS, TOKENS } from './sums.js';
export { DensityHistogramSchema, densityHistogram, type DensityHistogram } from './density-histogram.js';
export type { BatchView, CoderMetric, Column, DeviceSum, ReadSums, SpliceBase, SpliceMetric } from './metric.js';

type CoderMetrics = (typeof CODER_METRICS)[number];
type SpliceMetrics = (typeof SPLICE_METRICS)[number];
type ValueOf<M> = M extends CoderMetric<string, infer V> ? V : number;

/** Every coder metric's value, by name. */
export type CoderMetricValues = { [M in CoderMetrics as M['name']]: ValueOf<M> };
/** Every splice metric's value, by name. */
export type SpliceMetricValues = { [M in SpliceMetrics as M['name']]: number };

/** The device sums the coder metrics need, each once, `tokens` first. */
export const DEVICE_SUMS: readonly DeviceSum[] = [TOKENS, ...CODER_METRICS.flatMap((m) => m.sums)].filter((s, i, all) => all.findIndex((t) => t.name === s.name) === i);

/** The coder metrics' fields of the report schema. */
export const coderMetricShape = Object.fromEntries(CODER_METRICS.map((m) => [m.name, m.schema])) as { [M in CoderMetrics as M['name']]: z.ZodType<ValueOf<M>> };

/** The splice metrics as one schema. */
export const SpliceMetricsSchema = z.object(Object.fromEntries(SPLICE_METRICS.map((m) => [m.name, m.schema])) as { [M in SpliceMetrics as M['name']]: z.ZodType<number> });

/** Every metric that training logs (`eval/<name>/<coder>`), coder metrics first. */
export const LOGGED_METRICS: readonly (CoderMetric | SpliceMetric)[] = [...CODER_METRICS, ...SPLICE_METRICS].filter((m) => m.log);
