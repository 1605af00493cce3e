/**
 * `signum`: sign-SGD inside schedule-free's wrapper with momentum 0.95 (sparsify/sign_sgd.py,
 * schedulefree's ScheduleFreeWrapper: weight_lr_power 2, r 0, no weight decay), the
 * reference's default. Parameters hold y while training; z is kept per parameter, made at
 * the first step; saved coders hold x. No learning-rate schedule.
 */
import type { ProgramBuilder, SymBundle, SymScalar, SymTensor } from '../kernels/index.js';
import { slotOf, type Optimizer } from './optimizer.js';

/** The schedule-free momentum (`ScheduleFreeWrapper(momentum=0.95)`). */
export const SCHEDULE_FREE_BETA = 0.95;

/** The wrapper's running weights (host-side). */
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

/**
 * Schedule-free sign-SGD for one parameter p holding y, with z in state:
 * x = lerp(y, z, 1 - 1/beta); z -= lr * sign(grad); x = lerp(x, z, c); y = lerp(x, z, 1 - beta).
 * The wrapper's swaps of p and z move the same values, so none is needed here.
 */
export function signumScheduleFree(p: SymTensor, z: SymTensor, lr: SymScalar, ckp1: SymScalar, beta: number): void {
  const grad = p.grad;
  p.lerp_(z, 1 - 1 / beta);
  z.add_(grad.sign(), lr.neg());
  p.lerp_(z, ckp1);
  p.lerp_(z, 1 - beta);
}

/** y -> x for evaluation and saving: x = lerp(y, z, 1 - 1/beta), into a new tensor. */
export function scheduleFreeEval(p: SymTensor, z: SymTensor, beta: number): SymTensor {
  const x = p.detach().clone().named('x');
  x.lerp_(z, 1 - 1 / beta);
  return x;
}

export const signum: Optimizer<'signum', ScheduleFreeState> = {
  name: 'signum',
  defaultLr: (numLatents) => 5e-3 / Math.sqrt(numLatents / 2 ** 14),
  usesWarmup: false,
  // z is made at the first step, from the parameter then (after the first batch set the biases).
  slots: () => [],
  scalars: ['lr', 'ckp1'],
  host: { key: 'schedule_free', init: () => ({ lrMax: -1, weightSum: 0, k: 0 }) },
  schedule: (ctx, host) => ({ lr: ctx.lr, ckp1: scheduleFreeStep(host, ctx.lr) }),
  update(g: ProgramBuilder, { p, name, state, scalars }) {
    g.when(state.has(`z.${name}`).not(), () => state.set(`z.${name}`, p.detach().clone()));
    signumScheduleFree(p, slotOf(state, 'z', name), scalars.lr!, scalars.ckp1!, SCHEDULE_FREE_BETA);
  },
  saved(g: ProgramBuilder, p: SymTensor, name: string, state: SymBundle) {
    const z = state.maybe(`z.${name}`);
    return g.ifElse(g.isNone(z), () => ({ saved: p.detach() }), () => ({ saved: scheduleFreeEval(p, z, SCHEDULE_FREE_BETA) })).saved;
  },
};
