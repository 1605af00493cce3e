/**
 * Training: the Trainer and its step loop, the trainer's programs (hook step, optimizer step,
 * end-to-end losses), learning-rate / k / schedule-free schedules, hookpoint resolution,
 * metrics, and atomic checkpoints with resume. Not here: the coder math (src/math), the CLI
 * (src/cli), process launching (src/launch).
 */
export { Trainer, type StepReport, type TrainerOptions, type CoderSlot, type CoderMetrics, type MetricTable } from './trainer.js';
export { resolveHookpoints, modelHookpoints, type HookpointRequest } from './hookpoints.js';
