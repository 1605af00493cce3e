/**
 * `muon`: Muon on the matrices (sparsify/muon.py: nesterov momentum 0.95, 5 quintic
 * Newton-Schulz steps in bf16, decoupled weight decay 0.1, the update scaled by
 * 0.2 * sqrt(max(rows, cols))), Adam at the same learning rate on the rest. Its schedule:
 * linear decay with no warmup; the Adam part warms up over lr_warmup_steps. Across ranks each
 * matrix is orthogonalised by one rank (round robin) and broadcast.
 */
import type { ProgramBuilder, SymScalar, SymTensor } from '../kernels/index.js';
import { ADAM_SLOTS, adamUpdate } from './adam.js';
import { slotOf, type Optimizer } from './optimizer.js';
import { linearWarmupDecay } from './schedule.js';

/**
 * `quintic_newtonschulz`: 5 quintic Newton-Schulz steps in bf16 after scaling to unit
 * Frobenius norm, on the transpose when the matrix is taller than wide.
 */
export function newtonSchulz(g: ProgramBuilder, grad: SymTensor, steps = 5): SymTensor {
  const [a, b, c] = [3.4445, -4.775, 2.0315];
  const tall = grad.size(-2).gt(grad.size(-1));
  const bf16 = grad.to('bfloat16');
  let x = g.choose(tall, bf16.mT, bf16).named('X');
  // Ensure the spectral norm is at most 1.
  x = x.div(x.norm([-2, -1], true).add(1e-7)).named('X');
  for (let i = 0; i < steps; i++) {
    const A = x.matmul(x.mT).named('A');
    // b * A + c * A @ A, which Python reads as (b * A) + ((c * A) @ A): the same rounding in bf16.
    const B = A.mul(b).add(A.mul(c).matmul(A)).named('B');
    x = x.mul(a).add(B.matmul(x)).named('X');
  }
  return g.choose(tall, x.mT, x).named('orthogonalized');
}

/**
 * Muon for one >= 2-D parameter: nesterov momentum, Newton-Schulz, decoupled weight decay,
 * the update scaled by 0.2 * sqrt(max(rows, cols)). With `owner`, only that rank
 * orthogonalises and broadcasts the result (ranks hold equal averaged gradients, so all
 * would compute the same).
 */
export function muonUpdate(g: ProgramBuilder, p: SymTensor, buf: SymTensor, lr: SymScalar, owner?: SymScalar, momentum = 0.95, weightDecay = 0.1): void {
  const grad = p.grad;
  buf.lerp_(grad, 1 - momentum);
  const update = grad.lerp_(buf, momentum);
  let ortho: SymTensor;
  if (owner) {
    ortho = g.emptyLike(update, 'bfloat16').named('orthogonalized');
    g.when(g.rank().eq(owner), () => {
      ortho.copy_(newtonSchulz(g, update));
    });
    g.broadcast_(ortho, owner);
  } else {
    ortho = newtonSchulz(g, update);
  }
  const scale = g.float(0.2).mul(g.max(p.size(-2), p.size(-1)).pow(0.5));
  p.mul_(g.float(1).sub(lr.mul(weightDecay)));
  p.add_(ortho.typeAs(p), lr.mul(scale).neg());
}

export const muon: Optimizer<'muon', undefined> = {
  name: 'muon',
  defaultLr: () => 2e-3,
  usesWarmup: true,
  slots: (param) => (param.matrix ? ['momentum_buffer'] : ADAM_SLOTS),
  scalars: ['lr', 'lrAdam', 'adamStep', 'matrixOffset'],
  schedule: (ctx) => ({
    lr: ctx.lr * linearWarmupDecay(ctx.step, 0, ctx.totalSteps),
    lrAdam: ctx.lr * linearWarmupDecay(ctx.step, ctx.warmupSteps, ctx.totalSteps),
    adamStep: ctx.step + 1,
    matrixOffset: ctx.matrixOffset,
  }),
  update(g, { p, name, matrix, state, scalars, matrixIndex }) {
    if (!matrix) {
      adamUpdate(g, p, slotOf(state, 'exp_avg', name), slotOf(state, 'exp_avg_sq', name), scalars.lrAdam!, scalars.adamStep!);
      return;
    }
    // Newton-Schulz runs on one rank per matrix (round robin over every coder's), then is broadcast.
    const owner = scalars.matrixOffset!.add(matrixIndex).mod(g.worldSize());
    muonUpdate(g, p, slotOf(state, 'momentum_buffer', name), scalars.lr!, owner);
  },
};
