// The `segment` weight-gradient kernels (--sparse_backward segment: Triton kernels authored in
// TypeScript, src/math/segment-kernels.ts) run under TRITON_INTERPRET=1 on CPU tensors, against
// autograd of the naive formulas: a coder's losses and every gradient (topk, groupmax, a
// transcoder with a skip connection, AuxK, Multi-TopK; k = 1; k = M against the reference's
// index_add kernels; N and D not multiples
// of the kernels' blocks), the decoder in bf16 and fp32, a ragged selection, and the one line
// for segment on CPU without the interpreter.
process.env.TRITON_INTERPRET = '1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import * as coderPrograms from '../../src/coder/programs.js';
import { closeRuntime, type Tensor } from '../../src/bridge/index.js';
import { In, defineProgram, runProgram } from '../../src/kernels/index.js';
import { sparseDecoderOf } from '../../src/math/index.js';
import { defineTritonKernel } from '../../src/kernels/triton.js';
import { py, randn, referenceModule } from '../helpers/python.js';
import { againstNaive } from '../helpers/naive-backward.js';
import { runCli } from '../helpers/cli.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { choosePython } from '../../src/bridge/runtime.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let ref: unknown;
beforeAll(async () => {
  ref = await referenceModule();
});
afterAll(() => closeRuntime());

// triton comes with CUDA torch, not with the package; .ci/run installs it into .venv for these tests.
const hasTriton = ((): boolean => {
  try {
    execFileSync(choosePython(), ['-c', 'import triton'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasTriton)('segment backward (Triton, interpreted on CPU; skipped without triton: pip install triton into sparsify\'s Python)', () => {
  const variants = [
    { label: 'topk SAE with AuxK and Multi-TopK', activation: 'topk', transcode: false, skip: false, multiTopk: true, dead: 5, k: 4, m: 128, n: 37, d: 70 },
    { label: 'groupmax SAE with AuxK', activation: 'groupmax', transcode: false, skip: false, multiTopk: false, dead: 100, k: 4, m: 128, n: 40, d: 32 },
    { label: 'topk transcoder with skip connection and AuxK', activation: 'topk', transcode: true, skip: true, multiTopk: false, dead: 60, k: 4, m: 128, n: 33, d: 32 },
    { label: 'k = 1', activation: 'topk', transcode: false, skip: false, multiTopk: false, dead: 0, k: 1, m: 64, n: 17, d: 24 },
  ] as const;
  for (const [i, v] of variants.entries()) {
    it(`losses and every gradient equal autograd of the naive formulas: ${v.label}`, async () => {
      const r = await againstNaive(ref, 'segment', v, 170 + i);
      expect(r.sae_out).toBeLessThan(1e-5);
      expect(r.losses).toBeLessThan(1e-5);
      expect(r.max_rel_grad).toBeLessThan(1e-5);
      expect(r.grads).toEqual(expect.arrayContaining(['W_dec', 'b_dec', 'encoder.bias', 'encoder.weight']));
    });
  }

  // k = M: every latent selected, clipped ones too, whose gradient passes without the relu mask
  // (the reference's rule, which the naive formula does not restate); batchtopk: a ragged selection.
  for (const v of [{ label: 'k = M', cfg: { k: 16, numLatents: 16 } }, { label: 'batchtopk (ragged)', cfg: { k: 4, numLatents: 64, activation: 'batchtopk' as const } }]) {
    it(`${v.label}: the reference's index_add gradients`, async () => {
      const coder = await SparseCoder.create(8, v.cfg, { seed: 3 });
      await py('g = torch.Generator().manual_seed(9)\nwith torch.no_grad():\n  p["W_dec"].add_(torch.randn(p["W_dec"].shape, generator=g) * 0.1)', { p: coder.params });
      const x = await randn([20, 8], 4);
      const grads: Tensor[] = [];
      for (const sparseBackward of ['index_add', 'segment'] as const) {
        const out = await runProgram(coderPrograms.forwardProgram(coder.structure, { auxkBias: true, sparseBackward }), { params: coder.params, x, y: null, deadMask: null, k: v.cfg.k, grad: true });
        grads.push(await py<Tensor>('out["fvu"].backward()\nresult = torch.cat([p[n].grad.flatten() for n in sorted(p) if p[n].grad is not None])\nfor n in p: p[n].grad = None', { out, p: coder.params }));
      }
      expect(await py<number>('result = ((a - b).norm() / b.norm()).item()', { a: grads[1], b: grads[0] })).toBeLessThan(1e-5);
    });
  }

  for (const layout of ['rows', 'ragged'] as const) {
    for (const dtype of ['float32', 'bfloat16'] as const) {
      it(`the decoder's value and table gradients, ${layout}, acts in ${dtype}: autograd of the plain sum`, async () => {
        const ragged = layout === 'ragged';
        const spec = defineProgram(
          `test_decoder_segment_${layout}`,
          { indices: In.tensor({ dtype: 'int64' }), acts: In.tensor(), table: In.tensor(), rows: In.optionalTensor({ dtype: 'int64' }), offsets: In.optionalTensor({ dtype: 'int64' }) },
          (g, { indices, acts, table, rows, offsets }) => ({ out: g.apply(sparseDecoderOf('segment', ragged), { indices, acts, table, rows, offsets }, {}).decoded }),
          { grad: 'input' },
        );
        // 37 tokens (not a multiple of the 16-entry blocks), 70 columns (not of the 64-column ones),
        // 100 latents of which some are never picked; ragged: 0 to 6 entries per token.
        const env = await py<Record<string, Tensor | null>>(
          `g = torch.Generator().manual_seed(3)
table = torch.randn(100, 70, generator=g).requires_grad_(True)
if ragged:
    counts = torch.randint(0, 7, (37,), generator=g)
    rows = torch.repeat_interleave(torch.arange(37), counts)
    offsets = counts.cumsum(0) - counts
    indices = torch.randint(0, 90, (int(counts.sum()),), generator=g)
    acts = torch.rand(indices.shape, generator=g)
else:
    rows = offsets = None
    indices = torch.stack([torch.randperm(90, generator=g)[:5] for _ in range(37)])
    acts = torch.rand(37, 5, generator=g)
acts = acts.to(getattr(torch, dtype)).requires_grad_(True)
result = {"table": table, "acts": acts, "indices": indices, "rows": rows, "offsets": offsets}`,
          { ragged, dtype },
        );
        const out = await runProgram(spec, { indices: env.indices!, acts: env.acts!, table: env.table!, rows: env.rows ?? null, offsets: env.offsets ?? null, grad: true });
        const r = await py<Record<string, number | string>>(
          `G = torch.randn(out.shape, generator=torch.Generator().manual_seed(4))
(out * G).sum().backward()
t = table.detach().clone().requires_grad_(True)
a = acts.detach().float().requires_grad_(True)
if rows is None:
    want = (a.unsqueeze(-1) * t[indices]).sum(1)
else:
    want = torch.zeros(37, 70).index_add(0, rows, a.unsqueeze(-1) * t[indices])
(want * G).sum().backward()
result = {
  "acts_grad_dtype": str(acts.grad.dtype),
  "table_grad_dtype": str(table.grad.dtype),
  "out": ((out - want).norm() / want.norm()).item(),
  "d_acts": ((acts.grad.float() - a.grad).norm() / a.grad.norm()).item(),
  "d_table": ((table.grad - t.grad).norm() / t.grad.norm()).item(),
  "unpicked": table.grad[90:].abs().max().item(),
}`,
          { ...env, out: out.out },
        );
        expect([r.acts_grad_dtype, r.table_grad_dtype]).toEqual([`torch.${dtype}`, 'torch.float32']);
        const tol = dtype === 'float32' ? 1e-6 : 1e-2; // bf16 rows: about 2^-8 relative
        expect(r.out).toBeLessThan(tol);
        expect(r.d_acts).toBeLessThan(tol);
        expect(r.d_table).toBeLessThan(tol);
        expect(r.unpicked).toBe(0); // latents with no entries: zero rows, every one written
      });
    }
  }

  it('on CPU without the interpreter, --sparse_backward segment is one line naming the device', async () => {
    const work = mkdtempSync(join(tmpdir(), 'sparsify-segment-'));
    delete process.env.TRITON_INTERPRET;
    try {
      const r = await runCli(['--sparse_backward', 'segment', '--max_examples', '16', '--save_dir', work, '--log_to_wandb', 'false']);
      expect([r.code, r.err.trim().split('\n').at(-1)]).toEqual([1, 'sparsify: --sparse_backward segment runs Triton kernels on CUDA; this run is on cpu (use index_add or gemm, or TRITON_INTERPRET=1 to run them slowly on CPU)']);
    } finally {
      process.env.TRITON_INTERPRET = '1';
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('a kernel is a typed template: its source is a @triton.jit function of its parameters, constexprs marked', () => {
    const k = defineTritonKernel({ name: 'double_kernel', params: [{ name: 'x', kind: 'pointer' }, { name: 'n', kind: 'int' }, { name: 'BLOCK', kind: 'constexpr' }] as const, body: (p) => [`at = tl.program_id(0) * ${p.BLOCK} + tl.arange(0, ${p.BLOCK})`, `tl.store(${p.x} + at, tl.load(${p.x} + at, mask=at < ${p.n}) * 2, mask=at < ${p.n})`] });
    expect(k.source.split('\n').slice(0, 2)).toEqual(['@triton.jit', 'def double_kernel(x, n, BLOCK: tl.constexpr):']);
    expect(() => defineTritonKernel({ name: 'bad name', params: [] as const, body: () => [] })).toThrow("Triton kernel name 'bad name' is not an identifier");
  });
});
