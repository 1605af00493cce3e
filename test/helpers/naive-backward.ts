// One coder forward with a weight-gradient backend against autograd of the naive formulas
// (test/helpers/reference.py's naive_forward): the reconstruction, the losses and each
// parameter's gradient, for the backward tests of each kernel.
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import * as coderPrograms from '../../src/coder/programs.js';
import type { Tensor } from '../../src/bridge/index.js';
import { runProgram } from '../../src/kernels/index.js';
import type { SparseBackward } from '../../src/math/index.js';
import { py, randn } from './python.js';

export interface NaiveCase {
  activation: 'topk' | 'groupmax';
  transcode: boolean;
  skip: boolean;
  multiTopk: boolean;
  /** How many latents the dead mask marks (0: no AuxK). */
  dead: number;
  k: number;
  m: number;
  n: number;
  d: number;
}

/** The largest differences from the naive formulas (`seed`: the coder's; its scramble, x and y draw from seed + 10, 20, 30). */
export async function againstNaive(ref: unknown, sparseBackward: SparseBackward, v: NaiveCase, seed: number): Promise<{ sae_out: number; losses: number; max_rel_grad: number; grads: string[] }> {
  const coder = await SparseCoder.create(v.d, { k: v.k, numLatents: v.m, activation: v.activation, transcode: v.transcode, skipConnection: v.skip, multiTopk: v.multiTopk }, { seed });
  await py(
    'g = torch.Generator().manual_seed(s)\nwith torch.no_grad():\n  p["b_dec"].copy_(torch.randn(p["b_dec"].shape, generator=g) * 0.1)\n  p["encoder.bias"].copy_(torch.randn(p["encoder.bias"].shape, generator=g) * 0.01)\n  p["W_dec"].add_(torch.randn(p["W_dec"].shape, generator=g) * 0.1)\n  if "W_skip" in p: p["W_skip"].copy_(torch.randn(p["W_skip"].shape, generator=g) * 0.05)',
    { p: coder.params, s: seed + 10 },
  );
  const x = await randn([v.n, v.d], seed + 20);
  const y = v.transcode ? await randn([v.n, v.d], seed + 30) : null;
  const deadMask = v.dead ? await py<Tensor>('m = torch.zeros(M, dtype=torch.bool)\nm[torch.randperm(M, generator=torch.Generator().manual_seed(1))[:n]] = True\nresult = m', { M: v.m, n: v.dead }) : null;
  const out = await runProgram(coderPrograms.forwardProgram(coder.structure, { auxkBias: true, sparseBackward }), { params: coder.params, x, y, deadMask, k: v.k, grad: true });
  return py(
    `
(out["fvu"] + out["auxkLoss"] + out["multiTopkFvu"] / 8).backward()
q = ref.leaf_copy(dict(p))
want = ref.naive_forward(q, x, y, dead_mask, k, activation, transcode, skip, mtk)
(want["fvu"] + want["auxk"] + want["mtk"] / 8).backward()
rel = {n: ((p[n].grad - q[n].grad).norm() / q[n].grad.norm().clamp_min(1e-12)).item() for n in p if q[n].grad is not None}
result = {
  "sae_out": (out["saeOut"] - want["sae_out"]).abs().max().item(),
  "losses": max(abs(out[a].item() - want[b].item()) for a, b in (("fvu", "fvu"), ("auxkLoss", "auxk"), ("multiTopkFvu", "mtk"))),
  "max_rel_grad": max(rel.values()),
  "grads": sorted(rel),
}`,
    { ref, p: coder.params, out, x, y, dead_mask: deadMask, k: v.k, activation: v.activation, transcode: v.transcode, skip: v.skip, mtk: v.multiTopk },
  );
}
