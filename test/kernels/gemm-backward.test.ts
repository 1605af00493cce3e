// The `gemm` weight-gradient kernels (--sparse_backward gemm, the default on CUDA) against the
// naive formulas and autograd: the same values, and the same gradients up to summation order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import * as coderPrograms from '../../src/coder/programs.js';
import { closeRuntime, type Tensor } from '../../src/bridge/index.js';
import { In, defineProgram, runProgram } from '../../src/kernels/index.js';
import { sparseDecoderOf } from '../../src/math/index.js';
import { py, randn, referenceModule } from '../helpers/python.js';
import { againstNaive } from '../helpers/naive-backward.js';

let ref: unknown;
beforeAll(async () => {
  ref = await referenceModule();
});
afterAll(() => closeRuntime());

describe('gemm backward', () => {
  const variants = [
    { label: 'topk SAE', activation: 'topk', transcode: false, skip: false, multiTopk: false, dead: 0 },
    { label: 'topk SAE with AuxK and Multi-TopK', activation: 'topk', transcode: false, skip: false, multiTopk: true, dead: 5 },
    { label: 'groupmax SAE with AuxK', activation: 'groupmax', transcode: false, skip: false, multiTopk: false, dead: 100 },
    { label: 'topk transcoder with skip connection, AuxK and Multi-TopK', activation: 'topk', transcode: true, skip: true, multiTopk: true, dead: 100 },
  ] as const;
  for (const [i, v] of variants.entries()) {
    it(`losses and every gradient equal autograd of the naive formulas: ${v.label}`, async () => {
      const r = await againstNaive(ref, 'gemm', { ...v, d: 32, m: 128, k: 4, n: 40 }, 70 + i);
      expect(r.sae_out).toBeLessThan(1e-5);
      expect(r.losses).toBeLessThan(1e-5);
      expect(r.max_rel_grad).toBeLessThan(1e-5);
      expect(r.grads).toEqual(expect.arrayContaining(['W_dec', 'b_dec', 'encoder.bias', 'encoder.weight']));
    });
  }

  it('leaves its reused zero matrix all-zero: the same step twice gives the same gradients', async () => {
    const coder = await SparseCoder.create(24, { k: 3, numLatents: 96, multiTopk: true }, { seed: 5 });
    const x = await randn([30, 24], 6);
    const dead = await py<Tensor>('m = torch.zeros(96, dtype=torch.bool)\nm[::3] = True\nresult = m');
    const grads: Tensor[] = [];
    for (let i = 0; i < 2; i += 1) {
      const out = await runProgram(coderPrograms.forwardProgram(coder.structure, { auxkBias: true, sparseBackward: 'gemm' }), {
        params: coder.params,
        x,
        y: null,
        deadMask: dead,
        k: 3,
        grad: true,
      });
      grads.push(
        await py<Tensor>(
          '(out["fvu"] + out["auxkLoss"] + out["multiTopkFvu"] / 8).backward()\nresult = torch.cat([p[n].grad.flatten() for n in sorted(p)])\nfor n in p: p[n].grad = None',
          { out, p: coder.params },
        ),
      );
    }
    expect(await py<boolean>('result = bool(torch.equal(a, b)) and a.abs().sum().item() > 0', { a: grads[0], b: grads[1] })).toBe(true);
  });

  it('computes in the precision of the acts (bf16 under autocast) and returns gradients in each input dtype', async () => {
    const spec = defineProgram(
      'test_decoder_gemm',
      { indices: In.tensor({ dtype: 'int64' }), acts: In.tensor(), table: In.tensor() },
      (g, { indices, acts, table }) => ({ out: g.apply(sparseDecoderOf('gemm', false), { indices, acts, table, rows: g.none(), offsets: g.none() }, {}).decoded }),
      { grad: 'input' },
    );
    const env = await py<Record<string, Tensor>>(
      `g = torch.Generator().manual_seed(3)
table = torch.randn(64, 16, generator=g).requires_grad_(True)
acts = torch.rand(10, 4, generator=g).bfloat16().requires_grad_(True)
indices = torch.stack([torch.randperm(64, generator=g)[:4] for _ in range(10)])
result = {"table": table, "acts": acts, "indices": indices}`,
    );
    const out = await runProgram(spec, { indices: env.indices!, acts: env.acts!, table: env.table!, grad: true });
    const r = await py<Record<string, number | string>>(
      `G = torch.randn(out.shape, generator=torch.Generator().manual_seed(4))
(out * G).sum().backward()
t = table.detach().clone().requires_grad_(True)
a = acts.detach().float().requires_grad_(True)
want = (a.unsqueeze(-1) * t[indices]).sum(1)
(want * G).sum().backward()
result = {
  "out_dtype": str(out.dtype),
  "acts_grad_dtype": str(acts.grad.dtype),
  "table_grad_dtype": str(table.grad.dtype),
  "out": ((out - want).norm() / want.norm()).item(),
  "d_acts": ((acts.grad.float() - a.grad).norm() / a.grad.norm()).item(),
  "d_table": ((table.grad - t.grad).norm() / t.grad.norm()).item(),
}`,
      { ...env, out: out.out },
    );
    expect(r.out_dtype).toBe('torch.float32');
    expect(r.acts_grad_dtype).toBe('torch.bfloat16');
    expect(r.table_grad_dtype).toBe('torch.float32');
    // The rows are gathered in bf16 too: every figure about 2^-8 relative.
    expect(r.out).toBeLessThan(1e-2);
    expect(r.d_acts).toBeLessThan(1e-2);
    expect(r.d_table).toBeLessThan(1e-2);
  });
});
