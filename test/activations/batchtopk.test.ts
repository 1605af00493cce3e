// batchtopk: the N*k largest relu pre-activations of the whole batch, exactly the entries of
// dictionary_learning's BatchTopKSAE.encode(use_threshold=False) (restated below from its
// source: flatten, topk(k * N), scatter); gradients as autograd gives that formula; and it
// trains, with eval measuring its L0.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import * as coderPrograms from '../../src/coder/programs.js';
import { evaluate } from '../../src/eval/index.js';
import { bind, runPasses, runProgram } from '../../src/kernels/index.js';
import * as P from '../../src/trainer/programs.js';
import { Trainer } from '../../src/trainer/trainer.js';
import { py, randn } from '../helpers/python.js';
import type { Tensor } from '../../src/bridge/ops.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';

let work: string;
let fx: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-batchtopk-'));
  fx = await tinyFixture(work, { rows: 48, ctxLen: 16 });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

/** dictionary_learning's batch top-k (BatchTopKSAE.encode, use_threshold=False), over relu'd pre-activations `pre`. */
const DENSE_BATCH_TOPK = `
def dense_batch_topk(pre, k):
    flattened = pre.flatten()
    top = flattened.topk(k * pre.size(0), sorted=False, dim=-1)
    return torch.zeros_like(pre.flatten()).scatter_(-1, top.indices, top.values).reshape(pre.shape)
`;

describe('batchtopk', () => {
  it('selects exactly the dense formula\'s entries: a varying number per token, N*k in all', async () => {
    const coder = await SparseCoder.create(32, { activation: 'batchtopk', k: 4, numLatents: 128 }, { seed: 3 });
    const x = await randn([40, 32], 4);
    // A token far larger than the rest holds many times k latents (more than 8k): still
    // exactly the dense formula's entries, the widest row setting the width.
    const loud = await py<Tensor>('x2 = x.clone()\nx2[0] *= 50\nresult = x2', { x });
    await sameAsDense(coder, x);
    expect(Math.max(...(await sameAsDense(coder, loud)))).toBeGreaterThan(8 * 4);
  });

  it('keeps every positive entry when the batch has fewer than N*k (the dense formula\'s other picks are zeros)', async () => {
    const coder = await SparseCoder.create(32, { activation: 'batchtopk', k: 4, numLatents: 128 }, { seed: 3 });
    await py('with torch.no_grad(): p["encoder.bias"].fill_(-1.6)', { p: coder.params });
    const x = await randn([40, 32], 4);
    const { topActs, topIndices, preActs } = await coder.encode(x);
    const r = await py<{ equal: boolean; positive: number }>(
      `${DENSE_BATCH_TOPK}
want = dense_batch_topk(pre, 4)
got = torch.zeros_like(pre).scatter_add_(1, idx, acts)
result = {"equal": bool(torch.equal(got, want)), "positive": int((pre > 0).sum())}`,
      { pre: preActs, idx: topIndices, acts: topActs },
    );
    expect(r.positive).toBeGreaterThan(0);
    expect(r.positive).toBeLessThan(40 * 4);
    expect(r.equal).toBe(true);
  });

  async function sameAsDense(coder: SparseCoder, x: Tensor): Promise<number[]> {
    const { topActs, topIndices, preActs } = await coder.encode(x);
    const r = await py<{ equal: boolean; total: number; perRow: number[]; width: number }>(
      `${DENSE_BATCH_TOPK}
want = dense_batch_topk(pre, 4)
got = torch.zeros_like(pre).scatter_add_(1, idx, acts)
counts = (got > 0).sum(1)
result = {"equal": bool(torch.equal(got, want)), "total": int((got > 0).sum()), "perRow": counts.tolist(), "width": acts.shape[1]}`,
      { pre: preActs, idx: topIndices, acts: topActs },
    );
    expect(r.equal).toBe(true);
    expect(r.total).toBe(40 * 4);
    expect(new Set(r.perRow).size).toBeGreaterThan(1);
    expect(r.width).toBe(Math.max(...r.perRow));
    return r.perRow;
  }

  for (const sparseBackward of ['index_add', 'gemm'] as const) {
    it(`fvu and every gradient equal autograd of the dense formula (${sparseBackward})`, async () => {
      const coder = await SparseCoder.create(32, { activation: 'batchtopk', k: 4, numLatents: 128 }, { seed: 5 });
      await py('g = torch.Generator().manual_seed(6)\nwith torch.no_grad():\n  p["b_dec"].copy_(torch.randn(32, generator=g) * 0.1)\n  p["W_dec"].add_(torch.randn(p["W_dec"].shape, generator=g) * 0.1)', { p: coder.params });
      const x = await randn([40, 32], 7);
      const out = await runProgram(coderPrograms.forwardProgram(coder.structure, { auxkBias: true, sparseBackward }), { params: coder.params, x, k: 4, grad: true });
      const r = await py<{ fvu: number; worst: number; names: string[] }>(
        `${DENSE_BATCH_TOPK}
out["fvu"].backward()
q = {n: t.detach().clone().requires_grad_(True) for n, t in p.items() if t.requires_grad}
pre = torch.relu((x - q["b_dec"]) @ q["encoder.weight"].T + q["encoder.bias"])
f = dense_batch_topk(pre, 4)
y = f @ q["W_dec"] + q["b_dec"]
fvu = (x - y).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
fvu.backward()
rel = {n: ((p[n].grad - q[n].grad).norm() / q[n].grad.norm().clamp_min(1e-12)).item() for n in q}
result = {"fvu": abs(out["fvu"].item() - fvu.item()), "worst": max(rel.values()), "names": sorted(rel)}`,
        { out, p: coder.params, x },
      );
      expect(r.fvu).toBeLessThan(1e-5);
      expect(r.worst).toBeLessThan(1e-5);
      expect(r.names).toEqual(['W_dec', 'b_dec', 'encoder.bias', 'encoder.weight']);
    });
  }

  it('counts only the kept latents as fired: a padded slot names latent 0, which never fires', async () => {
    const coder = await SparseCoder.create(32, { activation: 'batchtopk', k: 4, numLatents: 64 }, { seed: 9 });
    await py('with torch.no_grad(): p["encoder.bias"][0] = -1e9', { p: coder.params });
    const s = coder.structure;
    const { state } = await runProgram(P.stateInitProgram(s, 'signum'), { params: coder.params });
    const hook = bind(P.fvuHookProgram(s), { params: coder.params, state, k: 4, deadThreshold: null, initBiases: false, ddp: false, thresholdBeta: null, l0Coefficient: null, targetL0: null, auxkAlpha: 0, accSteps: 1, micro: 1, autocast: false });
    await runPasses({ model: fx.model.model, rows: fx.data.rows, batches: [[0, 4]], passes: [{ hooks: [{ key: 'c', module: 'layers.0', program: hook }] }], device: 'cpu' });
    const r = await py<{ zero: boolean; fired: number }>('result = {"zero": bool(s["did_fire"][0]), "fired": int(s["did_fire"].sum())}', { s: state });
    expect(r.zero).toBe(false);
    expect(r.fired).toBeGreaterThan(0);
  });

  it('trains (fvu falls) and eval measures its L0', async () => {
    const fvus: number[] = [];
    const cfg = { sae: { activation: 'batchtopk' as const, k: 4, numLatents: 64 }, lr: 0.01, batchSize: 8, logToWandb: false, saveDir: work, runName: 'btk', saveEvery: 1000 };
    await new Trainer(cfg, fx.data, fx.model, { log: () => undefined, onStep: (s) => fvus.push(s.metrics['layers.0']!.fvu!) }).fit();
    expect(fvus[fvus.length - 1]!).toBeLessThan(fvus[0]!);
    const coders = await SparseCoder.loadMany(join(work, 'btk'));
    expect(coders.get('layers.0')!.cfg.activation).toBe('batchtopk');
    const report = await evaluate(fx.model, coders, fx.data, { rows: [0, 16], splice: 'none' });
    // k per token on average over each batch the coder encodes (two batches of 8 rows here).
    expect(report.coders['layers.0']!.l0).toBeCloseTo(4, 5);
    expect(report.encode_mode).toBe('auto');
    // Its own selection asked for explicitly: the same; by a threshold it never learned: one line.
    const own = await evaluate(fx.model, coders, fx.data, { rows: [0, 16], splice: 'none', encodeMode: 'topk' });
    expect(own.coders['layers.0']!.l0).toBeCloseTo(4, 5);
    expect(own.encode_mode).toBe('topk');
    await expect(evaluate(fx.model, coders, fx.data, { rows: [0, 16], splice: 'none', encodeMode: 'threshold' })).rejects.toThrow(/^--encode_mode threshold: coder layers\.0 has no learned inference threshold/);
  }, 120_000);
});
