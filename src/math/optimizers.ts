/**
 * Optimizer updates, one parameter at a time, as the reference's optimizers compute them:
 * sign-SGD inside schedule-free's wrapper (sparsify/sign_sgd.py, schedulefree's
 * ScheduleFreeWrapper), torch.optim.Adam's single-tensor update, and Muon (sparsify/muon.py).
 * State tensors live in a bundle under `<slot>.<param name>`; learning rates and the
 * schedule-free weights are numbers computed in TypeScript (trainer/schedules.ts) and passed
 * in each step.
 */
import type { ProgramBuilder, SymBundle, SymScalar, SymTensor } from '../kernels/index.js';

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

/** torch.optim.Adam's single-tensor update (no weight decay, no amsgrad), op for op. */
export function adam(
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
export function muon(g: ProgramBuilder, p: SymTensor, buf: SymTensor, lr: SymScalar, owner?: SymScalar, momentum = 0.95, weightDecay = 0.1): void {
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

/** State slot names per optimizer, as stored in the state bundle (`<slot>.<param>`). */
export const OPTIMIZER_SLOTS = {
  signum: ['z'],
  adam: ['exp_avg', 'exp_avg_sq'],
  muon: ['momentum_buffer', 'exp_avg', 'exp_avg_sq'],
} as const;

export type OptimizerName = keyof typeof OPTIMIZER_SLOTS;

/** The state tensor for `slot` of parameter `name`. */
export function slot(state: SymBundle, slotName: string, name: string): SymTensor {
  return state.get(`${slotName}.${name}`);
}
