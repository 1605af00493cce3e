// Cross-layer transcoders (src/math/cross-layer.ts, src/coder/cross-layer.ts): one forward's
// per-target fvu, summed loss and every parameter's gradient against a plain PyTorch
// restatement (written from circuit-tracer's CrossLayerTranscoder and the clt-training fork:
// y_hat_j = b_dec_j + sum_{i<=j} f_i @ W_dec_i[:, j-i], loss = sum_j fvu_j, or with the mse
// loss sum_j ||e_j||^2 / sum_j TV_j), for topk and jumprelu; a CLT whose cross-layer decoders are zero is per-layer transcoders bit for bit
// (fvu, AuxK and gradients); the folder round trip; per-layer loaders refuse a CLT folder.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import type { Tensor } from '../../src/bridge/ops.js';
import { CrossLayerTranscoder, SparseCoder } from '../../src/coder/index.js';
import { py, randn } from '../helpers/python.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-clt-'));
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

const LAYERS = ['layers.0.mlp', 'layers.1.mlp', 'layers.2.mlp'];
const D = 16;

/** Random values in every tensor of every source (a new CLT's decoders are zero). */
const scramble = (clt: CrossLayerTranscoder, seed: number): Promise<unknown> =>
  py(
    `g = torch.Generator().manual_seed(seed)
with torch.no_grad():
    for p in ps:
        for name, t in p.items():
            if name == "threshold" or not t.is_floating_point(): continue
            t.copy_(torch.randn(t.shape, generator=g) * 0.3)
result = None`,
    { ps: clt.sources, seed },
  );

const RESTATED = `
import torch
def restated(ps, xs, ys, k, act):
    fs = []
    for p, x in zip(ps, xs):
        pre = x @ p["encoder.weight"].T + p["encoder.bias"]
        if act == "topk":
            pre = torch.relu(pre)
            vals, idx = pre.topk(k, dim=-1)
            fs.append(torch.zeros_like(pre).scatter(1, idx, vals))
        else:  # jumprelu: pre where it clears its latent's threshold
            fs.append(pre * (pre > p["threshold"]))
    fvus = []
    for j in range(len(ps)):
        recon = ps[j]["b_dec"] + sum(fs[i] @ ps[i]["W_dec"][:, j - i, :] for i in range(j + 1))
        e = ys[j] - recon
        fvus.append(e.pow(2).sum() / (ys[j] - ys[j].mean(0)).pow(2).sum())
    return fvus

def restated_mse(ps, xs, ys, k, act):
    # The targets' summed squared error over their summed total variance.
    fvus = restated(ps, xs, ys, k, act)
    tvs = [(y - y.mean(0)).pow(2).sum() for y in ys]
    return sum(f * tv for f, tv in zip(fvus, tvs)) / sum(tvs)
`;

describe('cross-layer transcoder', () => {
  it('the mse loss (--cross_layer_loss mse) and its gradients are the restatement\'s: summed squared error over summed total variance (1e-5)', async () => {
    const clt = await CrossLayerTranscoder.create(D, LAYERS, { k: 4, numLatents: 32 }, { seed: 1 });
    await scramble(clt, 7);
    // Targets of different scales, so that the two losses differ.
    const xs = await Promise.all(LAYERS.map((_, i) => randn([40, D], 10 + i)));
    const ys = await Promise.all(LAYERS.map(async (_, i) => py<Tensor>('result = y * scale', { y: await randn([40, D], 20 + i), scale: [1, 5, 0.2][i] })));
    const out = await clt.forward(xs, ys, { grad: true, losses: { auxkBias: true, crossLayerLoss: 'mse' } });
    const worst = await py<{ loss: number; grads: number; gap: number }>(
      `${RESTATED}
loss.backward()
mine = [{n: t.grad.clone() for n, t in p.items() if t.requires_grad and t.grad is not None} for p in ps]
copies = [{n: t.detach().clone().requires_grad_(t.requires_grad) for n, t in p.items()} for p in ps]
want = restated_mse(copies, xs, ys, 4, "topk")
want.backward()
gd = max(float((g - c[n].grad).abs().max()) for m, c in zip(mine, copies) for n, g in m.items())
result = {"loss": float((loss - want).detach().abs()), "grads": gd, "gap": float((want.detach() - sum(restated(copies, xs, ys, 4, "topk"))).detach().abs())}`,
      { ps: clt.sources, xs, ys, loss: out.loss },
    );
    expect(worst.loss).toBeLessThan(1e-5);
    expect(worst.grads).toBeLessThan(1e-5);
    expect(worst.gap).toBeGreaterThan(0.1);
  });

  for (const act of ['topk', 'jumprelu'] as const) {
    it(`${act}: per-target fvu, the summed loss and every gradient are the plain restatement's (1e-5)`, async () => {
      const clt = await CrossLayerTranscoder.create(D, LAYERS, act === 'topk' ? { k: 4, numLatents: 32 } : { numLatents: 32, activation: act }, { seed: 1 });
      await scramble(clt, 7);
      const xs = await Promise.all(LAYERS.map((_, i) => randn([40, D], 10 + i)));
      const ys = await Promise.all(LAYERS.map((_, i) => randn([40, D], 20 + i)));
      const out = await clt.forward(xs, ys, { grad: true });
      const worst = await py<{ fvu: number; loss: number; grads: number; names: string[] }>(
        `${RESTATED}
loss.backward()
mine = [{n: t.grad.clone() for n, t in p.items() if t.requires_grad and t.grad is not None} for p in ps]
copies = [{n: t.detach().clone().requires_grad_(t.requires_grad) for n, t in p.items()} for p in ps]
fvus = restated(copies, xs, ys, 4, act)
sum(fvus).backward()
names = []
gd = 0.0
for m, c in zip(mine, copies):
    for n, g in m.items():
        names.append(n)
        if n == "threshold": continue  # jumprelu's threshold learns by its own straight-through estimator
        gd = max(gd, float((g - c[n].grad).abs().max()))
result = {"fvu": max(float((a - b).detach().abs()) for a, b in zip(mine_fvu, fvus)), "loss": float((loss - sum(fvus)).detach().abs()), "grads": gd, "names": sorted(set(names))}`,
        { ps: clt.sources, xs, ys, act, loss: out.loss, mine_fvu: out.fvu },
      );
      expect(worst.fvu).toBeLessThan(1e-5);
      expect(worst.loss).toBeLessThan(1e-5);
      expect(worst.grads).toBeLessThan(1e-5);
      expect(worst.names).toEqual(expect.arrayContaining(['W_dec', 'b_dec', 'encoder.bias', 'encoder.weight']));
    });
  }

  it('with its cross-layer decoders at zero it is per-layer transcoders, bit for bit: fvu, AuxK and gradients', async () => {
    const clt = await CrossLayerTranscoder.create(D, LAYERS, { k: 4, numLatents: 32 }, { seed: 3 });
    await scramble(clt, 8);
    await py('with torch.no_grad():\n    for p in ps: p["W_dec"][:, 1:].zero_()\nresult = None', { ps: clt.sources });
    const xs = await Promise.all(LAYERS.map((_, i) => randn([40, D], 30 + i)));
    const ys = await Promise.all(LAYERS.map((_, i) => randn([40, D], 40 + i)));
    const dead = await Promise.all(LAYERS.map((_, i) => py<Tensor>('result = torch.arange(32) % (i + 2) == 0', { i })));
    const out = await clt.forward(xs, ys, { grad: true, deadMasks: dead });
    const loss = await py<Tensor>('result = sum(f + a for f, a in zip(fvu, auxk))', { fvu: out.fvu, auxk: out.auxkLoss });
    await py('loss.backward()\nresult = None', { loss });
    for (const [i] of LAYERS.entries()) {
      const tc = await SparseCoder.create(D, { k: 4, numLatents: 32, transcode: true });
      await py('with torch.no_grad():\n    for n, t in tc.items(): t.copy_(src[n][:, 0] if n == "W_dec" else src[n])\nresult = None', { tc: tc.params, src: clt.sources[i] });
      const alone = await tc.forward(xs[i]!, ys[i]!, { grad: true, deadMask: dead[i]! });
      const same = await py<boolean[]>(
        `(alone_fvu + alone_auxk).backward()
result = [bool(torch.equal(fvu, alone_fvu)), bool(torch.equal(auxk, alone_auxk)), float(alone_auxk) > 0] + [bool(torch.equal(src[n].grad[:, 0] if n == "W_dec" else src[n].grad, t.grad)) for n, t in tc.items()]`,
        { fvu: out.fvu[i], auxk: out.auxkLoss[i], alone_fvu: alone.fvu, alone_auxk: alone.auxkLoss, src: clt.sources[i], tc: tc.params },
      );
      expect(same).toEqual([true, true, true, true, true, true, true]);
    }
  });

  it('encode then decode gives the forward\'s reconstructions; the folder round-trips; per-layer loaders refuse it', async () => {
    const clt = await CrossLayerTranscoder.create(D, LAYERS, { k: 4, numLatents: 32 }, { seed: 5 });
    await scramble(clt, 9);
    const xs = await Promise.all(LAYERS.map((_, i) => randn([12, D], 50 + i)));
    const codes = await clt.encode(xs);
    const recon = await clt.decode(codes);
    const fwd = await clt.forward(xs, xs);
    for (const [j] of LAYERS.entries()) expect(await py<boolean>('result = bool(torch.allclose(a, b, atol=1e-6))', { a: recon[j], b: fwd.recon[j] })).toBe(true);
    const dir = join(work, 'clt');
    await clt.saveToDisk(dir);
    const back = await CrossLayerTranscoder.load(dir);
    expect([back.layers, back.numLatents, back.dIn, back.cfg.k]).toEqual([LAYERS, 32, D, 4]);
    const shapes = await py<number[][]>('result = [list(p["W_dec"].shape) for p in ps]', { ps: back.sources });
    expect(shapes).toEqual([[32, 3, D], [32, 2, D], [32, 1, D]]);
    const again = await back.decode(await back.encode(xs));
    for (const [j] of LAYERS.entries()) expect(await py<boolean>('result = bool(torch.equal(a, b))', { a: again[j], b: recon[j] })).toBe(true);
    await expect(SparseCoder.loadFromDisk(dir)).rejects.toThrow(`${dir} holds a cross-layer transcoder (its cfg.json says cross_layer): load it with CrossLayerTranscoder.load, not as a per-layer coder`);
    await expect(SparseCoder.loadMany(dir)).rejects.toThrow('load it with CrossLayerTranscoder.load');
    await expect(CrossLayerTranscoder.create(D, LAYERS, { k: 4, numLatents: 32, transcode: false })).rejects.toThrow('a cross-layer transcoder is a transcoder: give --transcode');
    await expect(clt.forward(xs.slice(1), xs.slice(1))).rejects.toThrow('x: give one tensor per source layer (3: layers.0.mlp, layers.1.mlp, layers.2.mlp); got 2');
  });
});
