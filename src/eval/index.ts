/**
 * Evaluation: how good coders are inside the model (reconstruction, sparsity, firing density,
 * and the model's loss with them spliced in), from the CLI (`sparsify eval`), the API
 * (`evaluate()`) and during training (`--eval_every`). The metrics are a registry, one file
 * each (metrics/); the passes and device sums that feed them are programs.ts and evaluate.ts;
 * a cross-layer transcoder's evaluation (each target, the replacement model) is cross-layer.ts.
 * Not here: the training loop (src/trainer), the runner (python/sparsify_runtime/hooks.py).
 */
export { evaluate, hookpointOf, type EvalCoder, type EvaluateOptions, type SpliceMode } from './evaluate.js';
export { EvalReportSchema, CoderEvalSchema, SpliceMetricsSchema, DensityHistogramSchema, type EvalReport, type CoderEval, type SpliceMetrics, type DensityHistogram } from './report.js';
export { CODER_METRICS, SPLICE_METRICS, type CoderMetric, type SpliceMetric } from './metrics/index.js';
export { evaluateCrossLayer, type CrossLayerEvalOptions, type CrossLayerEvalReport } from './cross-layer.js';
