/** The learning-rate schedule the reference's Adam and Muon share. */

/**
 * transformers' get_linear_schedule_with_warmup multiplier after `step` scheduler steps:
 * step/warmup during warmup, then linear decay to 0 at `total`.
 */
export function linearWarmupDecay(step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  return Math.max(0, (total - step) / Math.max(1, total - warmup));
}
