/**
 * Training: the Trainer and its step loop (trainer.ts), the coders it trains (slots.ts), the
 * rows of each batch (data-order.ts), a step's programs assembled (step.ts) from the
 * trainer's programs (hook step, optimizer step, end-to-end losses: programs.ts), the k
 * schedule, metrics, and atomic checkpoints with resume. Not here: the coder math
 * (src/math), the optimizers (src/optimizers), which modules to hook (src/model), the CLI
 * (src/cli), process launching (src/launch).
 */
export { Trainer, type StepReport, type TrainerOptions, type CoderSlot, type CoderMetrics, type MetricTable } from './trainer.js';
export { resolveHookpoints, modelHookpoints, type HookpointRequest } from '../model/hookpoints.js';
