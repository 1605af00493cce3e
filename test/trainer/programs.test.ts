// The trainer's kernels one at a time, against plain torch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime, type PyObject } from '../../src/bridge/index.js';
import { bind, runPasses, runProgram } from '../../src/kernels/index.js';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import * as P from '../../src/trainer/programs.js';
import type { CoderStructure } from '../../src/math/structure.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { py } from '../helpers/python.js';

let work: string;
let fx: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-progs-'));
  fx = await tinyFixture(work, { rows: 32, ctxLen: 16 });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

const sae: CoderStructure = { activation: 'topk', transcode: false, skipConnection: false, multiTopk: false, normalizeDecoder: true, inferenceThreshold: false };

async function coderWithState(): Promise<{ coder: SparseCoder; state: PyObject }> {
  const coder = await SparseCoder.create(32, { k: 4, numLatents: 64 }, { seed: 0 });
  const { state } = await runProgram(P.stateInitProgram(sae, 'signum'), { params: coder.params });
  return { coder, state };
}

describe('fvu hook', () => {
  it('exclude_tokens removes those positions: b_dec is initialised from the other tokens only', async () => {
    const { coder, state } = await coderWithState();
    // Exclude the two most frequent token ids of the first batch.
    const exclude = await py<number[]>('ids = rows.rows(0, 4).flatten()\nv, c = ids.unique(return_counts=True)\nresult = v[c.argsort(descending=True)[:2]].tolist()', { rows: fx.data.rows });
    const hook = bind(P.fvuHookProgram(sae), { params: coder.params, state, k: 4, deadThreshold: null, initBiases: true, ddp: false, thresholdBeta: null, l0Coefficient: null, targetL0: null, auxkAlpha: 0, accSteps: 1, micro: 1, autocast: false });
    await runPasses({
      model: fx.model.model,
      rows: fx.data.rows,
      batches: [[0, 4]],
      passes: [{ hooks: [{ key: 'c', module: 'layers.1', program: hook }] }],
      device: 'cpu',
      excludeTokens: exclude,
    });
    const r = await py<Record<string, number>>(
      `
ids = rows.rows(0, 4)
acts = {}
h = model.base_model.get_submodule("layers.1").register_forward_hook(lambda m, i, o: acts.__setitem__("y", (o[0] if isinstance(o, tuple) else o).flatten(0, 1)))
with torch.no_grad(): model(ids)
h.remove()
keep = ~torch.isin(ids.flatten(), torch.tensor(exclude))
result = {"kept": int(keep.sum()), "all": keep.numel(), "diff": (p["b_dec"] - acts["y"][keep].mean(0)).abs().max().item(), "diff_all": (p["b_dec"] - acts["y"].mean(0)).abs().max().item()}`,
      { rows: fx.data.rows, model: fx.model.model, exclude, p: coder.params },
    );
    expect(r.kept).toBeLessThan(r.all!);
    expect(r.diff).toBeLessThan(1e-6);
    expect(r.diff_all).toBeGreaterThan(1e-4);
  });

  it('micro_acc_steps splits the activations into chunks: grads = sum over chunks of grad(fvu_chunk) / acc', async () => {
    const { coder, state } = await coderWithState();
    const hook = bind(P.fvuHookProgram(sae), { params: coder.params, state, k: 4, deadThreshold: null, initBiases: false, ddp: false, thresholdBeta: null, l0Coefficient: null, targetL0: null, auxkAlpha: 0, accSteps: 6, micro: 3, autocast: false });
    const ref = await py<PyObject>('result = {k: v.detach().clone() for k, v in p.items()}', { p: coder.params });
    const res = await runPasses({
      model: fx.model.model,
      rows: fx.data.rows,
      batches: [[0, 4]],
      passes: [{ hooks: [{ key: 'c', module: 'layers.0', program: hook }] }],
      device: 'cpu',
    });
    const r = await py<Record<string, number>>(
      `
import pathlib
ns = {}
exec(pathlib.Path(helper).read_text(), ns)
ids = rows.rows(0, 4)
acts = {}
h = model.base_model.get_submodule("layers.0").register_forward_hook(lambda m, i, o: acts.__setitem__("y", (o[0] if isinstance(o, tuple) else o).flatten(0, 1)))
with torch.no_grad(): model(ids)
h.remove()
q = {k: v.clone().requires_grad_(True) for k, v in ref.items()}
with torch.no_grad():
  q["W_dec"] /= torch.norm(q["W_dec"], dim=1, keepdim=True) + torch.finfo(torch.float32).eps
fvus = []
for chunk in acts["y"].chunk(3):
  f = ns["naive_forward"](q, chunk, None, None, 4, "topk", False, False, False)["fvu"]
  f.div(6).backward()
  fvus.append(f.item())
result = {n: (p[n].grad - q[n].grad).abs().max().item() for n in q}
result["fvu_sum"] = sum(fvus)`,
      { helper: new URL('../helpers/reference.py', import.meta.url).pathname, rows: fx.data.rows, model: fx.model.model, p: coder.params, ref },
    );
    expect(res.metrics.c!.fvu).toBeCloseTo(r.fvu_sum!, 5);
    for (const n of ['encoder.weight', 'encoder.bias', 'W_dec', 'b_dec']) expect([n, r[n]! < 1e-6]).toEqual([n, true]);
  });
});

describe('optimizer step', () => {
  it('dead-latent counters: += tokens in the step, reset to 0 where a latent fired; fired marks cleared', async () => {
    const { coder, state } = await coderWithState();
    await py('with torch.no_grad():\n  s["tokens_since_fired"].copy_(torch.arange(64) * 10)\n  s["did_fire"][[1, 5, 63]] = True\n  s["step_tokens"].fill_(100)\nfor t in p.values(): t.grad = torch.zeros_like(t)', { s: state, p: coder.params });
    const out = await runProgram(P.optimizerProgram(sae, 'signum'), {
      params: coder.params,
      state,
      lr: 0,
      ckp1: 1,
      deadThreshold: 500,
      ddp: false,
    });
    const r = await py<{ counts: number[]; fired: number; dead: number; pending: number }>('result = {"counts": s["tokens_since_fired"].tolist(), "fired": int(s["did_fire"].sum()), "dead": float(d), "pending": int(s["step_tokens"])}', {
      s: state,
      d: out.metrics.dead_pct,
    });
    const want = Array.from({ length: 64 }, (_, i) => ([1, 5, 63].includes(i) ? 0 : i * 10 + 100));
    expect(r.counts).toEqual(want);
    expect(r.fired).toBe(0);
    expect(r.pending).toBe(0);
    expect(r.dead).toBeCloseTo(want.filter((c) => c > 500).length / 64, 6);
  });
});
