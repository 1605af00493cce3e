/**
 * Evaluation: how good coders are inside the model (reconstruction, sparsity, firing density,
 * and the model's loss with them spliced in), from the CLI (`sparsify eval`), the API
 * (`evaluate()`) and during training (`--eval_every`). The metric math is in programs.ts;
 * not here: the training loop (src/trainer), the runner (python/sparsify_runtime/hooks.py).
 */
export { evaluate, hookpointOf, type EvalCoder, type EvaluateOptions, type SpliceMode } from './evaluate.js';
export { EvalReportSchema, CoderEvalSchema, SpliceMetricsSchema, DensityHistogramSchema, type EvalReport, type CoderEval, type SpliceMetrics, type DensityHistogram } from './report.js';
