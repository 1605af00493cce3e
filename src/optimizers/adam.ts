/**
 * `adam`: torch.optim.Adam (no weight decay, no amsgrad), op for op, with the reference's
 * schedule: linear warmup over lr_warmup_steps, then linear decay to 0.
 */
import type { ProgramBuilder, SymScalar, SymTensor } from '../kernels/index.js';
import { slotOf, type Optimizer } from './optimizer.js';
import { linearWarmupDecay } from './schedule.js';

/** torch.optim.Adam's single-tensor update, op for op. */
export function adamUpdate(
  g: ProgramBuilder,
  p: SymTensor,
  expAvg: SymTensor,
  expAvgSq: SymTensor,
  lr: SymScalar,
  step: SymScalar,
  betas: [number, number] = [0.9, 0.999],
  eps = 1e-8,
): void {
  const [beta1, beta2] = betas;
  const grad = p.grad;
  expAvg.lerp_(grad, 1 - beta1);
  expAvgSq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  const biasCorrection1 = g.float(1).sub(g.float(beta1).pow(step));
  const biasCorrection2 = g.float(1).sub(g.float(beta2).pow(step));
  const stepSize = lr.div(biasCorrection1);
  const denom = expAvgSq.sqrt().div(biasCorrection2.pow(0.5)).named('denom');
  denom.add_(eps);
  p.addcdiv_(expAvg, denom, stepSize.neg());
}

/** Adam's state slots for one parameter. */
export const ADAM_SLOTS = ['exp_avg', 'exp_avg_sq'] as const;

export const adam: Optimizer<'adam', undefined> = {
  name: 'adam',
  defaultLr: (numLatents) => 2e-4 / Math.sqrt(numLatents / 2 ** 14),
  usesWarmup: true,
  slots: () => ADAM_SLOTS,
  scalars: ['lr', 'adamStep'],
  schedule: (ctx) => ({ lr: ctx.lr * linearWarmupDecay(ctx.step, ctx.warmupSteps, ctx.totalSteps), adamStep: ctx.step + 1 }),
  update(g, { p, name, state, scalars }) {
    adamUpdate(g, p, slotOf(state, 'exp_avg', name), slotOf(state, 'exp_avg_sq', name), scalars.lr!, scalars.adamStep!);
  },
};
