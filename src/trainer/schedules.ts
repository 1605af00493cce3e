/** Learning-rate, k and schedule-free schedules: plain numbers computed in TypeScript. */
import type { OptimizerName } from '../math/optimizers.js';

/** The reference's default learning rate for a coder with `numLatents` latents. */
export function defaultLr(optimizer: OptimizerName, numLatents: number): number {
  const scale = Math.sqrt(numLatents / 2 ** 14);
  switch (optimizer) {
    case 'signum':
      return 5e-3 / scale;
    case 'adam':
      return 2e-4 / scale;
    case 'muon':
      return 2e-3;
  }
}

/**
 * transformers' get_linear_schedule_with_warmup multiplier after `step` scheduler steps:
 * step/warmup during warmup, then linear decay to 0 at `total`.
 */
export function linearWarmupDecay(step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  return Math.max(0, (total - step) / Math.max(1, total - warmup));
}

/** Python's round(): to the nearest integer, halves to even (56.5 -> 56, 57.5 -> 58). */
export function pythonRound(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** k for a batch counter: linear decay from initialK to k over kDecaySteps batches (the reference's `get_current_k`). */
export function currentK(globalStep: number, kDecaySteps: number, initialK: number, k: number): number {
  if (globalStep >= kDecaySteps) return k;
  const progress = globalStep / kDecaySteps;
  return pythonRound(initialK * (1 - progress) + k * progress);
}

/** The k that k decay starts from: min(M, round(10 * D)). */
export function initialK(numLatents: number, dIn: number): number {
  return Math.min(numLatents, pythonRound(dIn * 10));
}

/** The schedule-free wrapper's running weights for one parameter group. */
export interface ScheduleFreeState {
  lrMax: number;
  weightSum: number;
  /** Steps taken. */
  k: number;
}

/**
 * Advance the schedule-free bookkeeping by one step (weight_lr_power 2, r 0) and return the
 * interpolation weight c = weight / weight_sum used for x.
 */
export function scheduleFreeStep(state: ScheduleFreeState, lr: number): number {
  const lrNow = Math.max(lr, 1e-8);
  state.lrMax = Math.max(lrNow, state.lrMax);
  const weight = (state.k + 1) ** 0 * state.lrMax ** 2;
  state.weightSum += weight;
  state.k += 1;
  return weight / state.weightSum;
}
