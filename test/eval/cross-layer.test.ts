// A cross-layer transcoder's evaluation (src/eval/cross-layer.ts) against plain PyTorch hooks
// on the same tiny model: each target's fvu (per batch, averaged) from the clean codes, the CE
// with one layer's MLP output replaced from the clean codes, and the replacement model's CE
// with every MLP replaced at once from live codes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { CrossLayerTranscoder } from '../../src/coder/index.js';
import { evaluateCrossLayer } from '../../src/eval/cross-layer.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { py } from '../helpers/python.js';

let work: string;
let fx: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-clt-eval-'));
  fx = await tinyFixture(work, { rows: 16, ctxLen: 16, kind: 'causal_lm' });
}, 120_000);
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

const RESTATED = `
import torch
import torch.nn.functional as F
def first(o): return o[0] if isinstance(o, tuple) else o
def again(o, h): return (h, *o[1:]) if isinstance(o, tuple) else h
def codes_of(p, x, k):
    pre = torch.relu(x @ p["encoder.weight"].T + p["encoder.bias"])
    vals, idx = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, vals)
def recon_of(ps, codes, j):
    return ps[j]["b_dec"] + sum(codes[i] @ ps[i]["W_dec"][:, j - i, :] for i in range(j + 1))
def run(model, ids, layers, ps, k, replace):
    """replace: None (clean, capture), an int (that layer from the clean codes), or "all" (live)."""
    codes, seen, handles = {}, {}, []
    clean = {}
    if isinstance(replace, int):
        clean = run(model, ids, layers, ps, k, None)["codes"]
    for j, name in enumerate(layers):
        def hook(m, a, o, j=j):
            x, y = a[0], first(o)
            codes[j] = codes_of(ps[j], x, k)
            seen[j] = y
            if replace == "all":
                return again(o, recon_of(ps, codes, j).to(y.dtype))
            if replace == j:
                return again(o, recon_of(ps, clean, j).to(y.dtype))
        handles.append(model.base_model.get_submodule(name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            logits = model(ids).logits
    finally:
        for h in handles: h.remove()
    ce = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())
    return {"codes": codes, "y": seen, "ce": float(ce)}
`;

describe('cross-layer transcoder evaluation', () => {
  it('per-target fvu, each layer spliced alone and the replacement model match plain hooks', async () => {
    const layers = ['layers.0.mlp', 'layers.1.mlp'];
    const clt = await CrossLayerTranscoder.create(32, layers, { k: 6, numLatents: 64 }, { seed: 2 });
    await py(
      `g = torch.Generator().manual_seed(5)
with torch.no_grad():
    for p in ps:
        p["W_dec"].copy_(torch.randn(p["W_dec"].shape, generator=g) * 0.5)
        p["b_dec"].copy_(torch.randn(p["b_dec"].shape, generator=g) * 0.5)
result = None`,
      { ps: clt.sources },
    );
    const report = await evaluateCrossLayer(fx.model, clt, fx.data, { rows: [0, 8], batchSize: 4 });
    const want = await py<{ fvu: number[]; ce_clean: number; each: number[]; all: number }>(
      `${RESTATED}
q = [{n: t.detach() for n, t in p.items()} for p in ps]
batches = [rows.rows(0, 4), rows.rows(4, 8)]
fvu = [0.0, 0.0]
for ids in batches:
    r = run(model, ids, layers, q, 6, None)
    for j in range(2):
        y = r["y"][j].flatten(0, 1)
        e = y - recon_of(q, {i: c.flatten(0, 1) for i, c in r["codes"].items()}, j)
        fvu[j] += float(e.pow(2).sum() / (y - y.mean(0)).pow(2).sum()) / 2
ids = rows.rows(0, 8)
result = {"fvu": fvu, "ce_clean": run(model, ids, layers, q, 6, None)["ce"], "each": [run(model, ids, layers, q, 6, j)["ce"] for j in range(2)], "all": run(model, ids, layers, q, 6, "all")["ce"]}`,
      { model: fx.model.model, rows: fx.data.rows, layers, ps: clt.sources },
    );
    layers.forEach((layer, j) => {
      const t = report.targets[layer]!;
      expect(t.metrics.fvu!).toBeCloseTo(want.fvu[j]!, 4);
      expect(t.splice!.ce_clean).toBeCloseTo(want.ce_clean, 4);
      expect(t.splice!.ce_spliced).toBeCloseTo(want.each[j]!, 4);
      expect(t.metrics.l0).toBeGreaterThan(0);
    });
    expect(report.replacement!.ce_spliced).toBeCloseTo(want.all, 4);
    // Replacing does change the loss (a random tiny model is nearly indifferent: by 6e-4 to 6e-3), by more than the 5e-5 the comparisons allow.
    expect(Math.min(Math.abs(want.all - want.ce_clean), ...want.each.map((c) => Math.abs(c - want.ce_clean)))).toBeGreaterThan(2e-4);
    expect(report.replacement!.ce_loss_recovered).toEqual(expect.any(Number));
    expect(report.tokens).toBe(8 * 16);

    // Excluded tokens keep the model's own output when replaced, and take no part in the sums.
    const excluded = await py<number>('result = int(rows.rows(0, 8)[0, 3])', { rows: fx.data.rows });
    const masked = await evaluateCrossLayer(fx.model, clt, fx.data, { rows: [0, 8], batchSize: 4, excludeTokens: [excluded] });
    const kept = await py<{ tokens: number; all: number }>(
      `${RESTATED}
q = [{n: t.detach() for n, t in p.items()} for p in ps]
ids = rows.rows(0, 8)
keep = ids != tok
codes, handles = {}, []
for j, name in enumerate(layers):
    def hook(m, a, o, j=j):
        y = first(o)
        codes[j] = codes_of(q[j], a[0], 6)
        return again(o, torch.where(keep[..., None], recon_of(q, codes, j).to(y.dtype), y))
    handles.append(model.base_model.get_submodule(name).register_forward_hook(hook))
with torch.no_grad():
    logits = model(ids).logits
for h in handles: h.remove()
result = {"tokens": int(keep.sum()), "all": float(F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten(), reduction="none").reshape(8, 15).mul((keep[:, :-1] & keep[:, 1:]).float()).sum() / (keep[:, :-1] & keep[:, 1:]).sum())}`,
      { model: fx.model.model, rows: fx.data.rows, layers, ps: clt.sources, tok: excluded },
    );
    expect(masked.tokens).toBe(kept.tokens);
    expect(kept.tokens).toBeLessThan(8 * 16);
    expect(masked.replacement!.ce_spliced).toBeCloseTo(kept.all, 4);
  }, 120_000);
});
