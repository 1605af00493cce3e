/**
 * Optimizer updates as kernels (SPEC 3): sign-SGD inside a schedule-free wrapper, Adam
 * (torch's single-tensor update, op for op) and Muon. Each function emits the update of one
 * parameter; state tensors live in a bundle under `<slot>.<param name>`. Learning rates
 * and schedule-free weights are scalars computed in TypeScript and passed in per step.
 */
import type { Bundle, ProgramBuilder, Scalar, Tensor } from './graph.js';

/**
 * Schedule-free sign-SGD for one parameter p holding y, with z in state:
 * x = lerp(y, z, 1 - 1/beta); z -= lr * sign(grad); x = lerp(x, z, c); y = lerp(x, z, 1 - beta).
 * (The schedule-free wrapper's swaps move the same values; no swap is needed here.)
 */
export function signumScheduleFree(g: ProgramBuilder, p: Tensor, z: Tensor, lr: Scalar, ckp1: Scalar, beta: number): void {
  const grad = p.grad;
  p.lerp_(z, 1 - 1 / beta);
  z.add_(grad.sign(), g.scalarExpr(`-${lr.code}`));
  p.lerp_(z, ckp1);
  p.lerp_(z, 1 - beta);
}

/** y -> x for evaluation and saving: x = lerp(y, z, 1 - 1/beta), into a new tensor. */
export function scheduleFreeEval(p: Tensor, z: Tensor, beta: number): Tensor {
  const x = p.detach().clone();
  x.lerp_(z, 1 - 1 / beta);
  return x;
}

/** torch.optim.Adam's single-tensor update (no weight decay, no amsgrad). */
export function adam(
  g: ProgramBuilder,
  p: Tensor,
  expAvg: Tensor,
  expAvgSq: Tensor,
  lr: Scalar,
  step: Scalar,
  betas: [number, number] = [0.9, 0.999],
  eps = 1e-8,
): void {
  const [beta1, beta2] = betas;
  const grad = p.grad;
  expAvg.lerp_(grad, 1 - beta1);
  expAvgSq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  const bc1 = g.scalar(`1 - ${beta1} ** ${step.code}`);
  const bc2 = g.scalar(`1 - ${beta2} ** ${step.code}`);
  const stepSize = g.scalar(`${lr.code} / ${bc1.code}`);
  const bc2Sqrt = g.scalar(`${bc2.code} ** 0.5`);
  const denom = g.tensor(`(${expAvgSq.code}.sqrt() / ${bc2Sqrt.code}).add_(${eps})`, p.shape, p.dtype);
  p.addcdiv_(expAvg, denom, g.scalarExpr(`-${stepSize.code}`));
}

/** Quintic Newton-Schulz orthogonalisation in bf16 (5 steps), transposing wide-short matrices. */
export function newtonSchulz(g: ProgramBuilder, grad: Tensor, steps = 5): Tensor {
  const [a, b, c] = [3.4445, -4.775, 2.0315];
  const tall = g.scalar(`${grad.code}.size(-2) > ${grad.code}.size(-1)`);
  let x = grad.to('bfloat16');
  x = g.tensor(`${x.code}.mT if ${tall.code} else ${x.code}`);
  x = g.tensor(`${x.code} / (${x.code}.norm(dim=(-2, -1), keepdim=True) + 1e-7)`);
  for (let i = 0; i < steps; i++) {
    const A = x.matmul(x.mT);
    const B = A.mul(b).add(A.matmul(A).mul(c));
    x = x.mul(a).add(B.matmul(x));
  }
  return g.tensor(`${x.code}.mT if ${tall.code} else ${x.code}`);
}

/**
 * Muon for one >= 2-D parameter: nesterov momentum, Newton-Schulz, decoupled weight decay.
 * With `owner`, only that rank orthogonalises and broadcasts the result (ranks hold equal
 * averaged gradients, so all would compute the same).
 */
export function muon(g: ProgramBuilder, p: Tensor, buf: Tensor, lr: Scalar, owner?: Scalar, momentum = 0.95, weightDecay = 0.1): void {
  const grad = p.grad;
  buf.lerp_(grad, 1 - momentum);
  const update = grad.lerp_(buf, momentum);
  let ortho: Tensor;
  if (owner) {
    ortho = g.tensor(`torch.empty_like(${update.code}, dtype=torch.bfloat16)`);
    g.when(g.scalarExpr(`(_rank() == ${owner.code})`), () => {
      ortho.copy_(newtonSchulz(g, update));
    });
    g.broadcast_(ortho, owner);
  } else {
    ortho = newtonSchulz(g, update);
  }
  const scale = g.scalar(`0.2 * max(${p.code}.shape[-2:]) ** 0.5`);
  p.mul_(g.scalarExpr(`(1 - ${lr.code} * ${weightDecay})`));
  p.add_(ortho.typeAs(p), g.scalarExpr(`-${lr.code} * ${scale.code}`));
}

/** State slot names per optimizer, as stored in the state bundle (`<slot>.<param>`). */
export const OPTIMIZER_SLOTS = {
  signum: ['z'],
  adam: ['exp_avg', 'exp_avg_sq'],
  muon: ['momentum_buffer', 'exp_avg', 'exp_avg_sq'],
} as const;

export type OptimizerName = keyof typeof OPTIMIZER_SLOTS;

/** The state tensor for `slot` of parameter `name`. */
export function slot(state: Bundle, slotName: string, name: string): Tensor {
  return state.get(`${slotName}.${name}`);
}
