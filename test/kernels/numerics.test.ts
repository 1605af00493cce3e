// TS-authored kernels against plain torch formulas and autograd (SPEC section 1).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { closeRuntime, type Tensor } from '../../src/bridge/index.js';
import { py, randn, referenceModule } from '../helpers/python.js';

let ref: unknown;
beforeAll(async () => {
  ref = await referenceModule();
});
afterAll(() => closeRuntime());

type Case = { n: number; d: number; m: number; k: number; activation: 'topk' | 'groupmax'; transcode: boolean };
const cases: Case[] = [
  { n: 32, d: 64, m: 256, k: 8, activation: 'topk', transcode: false },
  { n: 20, d: 48, m: 192, k: 6, activation: 'topk', transcode: false },
  { n: 16, d: 64, m: 256, k: 8, activation: 'groupmax', transcode: false },
  { n: 24, d: 40, m: 160, k: 5, activation: 'groupmax', transcode: false },
  { n: 12, d: 30, m: 120, k: 4, activation: 'topk', transcode: true },
  { n: 12, d: 30, m: 120, k: 6, activation: 'groupmax', transcode: true },
];

const name = (c: Case): string => `${c.activation} ${c.transcode ? 'transcoder' : 'SAE'} N=${c.n} D=${c.d} M=${c.m} k=${c.k}`;

async function randomizeBiases(coder: SparseCoder, seed: number): Promise<void> {
  // Nonzero biases so their gradients are exercised (init sets them to zero).
  await py(`g = torch.Generator().manual_seed(seed)\nwith torch.no_grad():\n  p["b_dec"].copy_(torch.randn(p["b_dec"].shape, generator=g) * 0.1)\n  p["encoder.bias"].copy_(torch.randn(p["encoder.bias"].shape, generator=g) * 0.01)`, {
    p: coder.params,
    seed,
  });
}

describe('fused encoder', () => {
  for (const [i, c] of cases.entries()) {
    it(`values, indices and all gradients equal autograd of the naive formula: ${name(c)}`, async () => {
      const coder = await SparseCoder.create(c.d, { k: c.k, numLatents: c.m, activation: c.activation, transcode: c.transcode }, { seed: i });
      await randomizeBiases(coder, 100 + i);
      const x = await randn([c.n, c.d], 200 + i, true);
      const enc = await coder.encode(x, { grad: true });
      expect(enc.topActs.shape).toEqual([c.n, c.k]);
      expect(enc.topIndices.shape).toEqual([c.n, c.k]);
      expect(enc.topIndices.dtype).toBe('int64');
      expect(enc.preActs.shape).toEqual([c.n, c.m]);
      const r = await py<Record<string, number | boolean>>(
        `
G = torch.randn(acts.shape, generator=torch.Generator().manual_seed(7))
(acts * G).sum().backward()
q = ref.leaf_copy({k: v for k, v in p.items()})
xr = x.detach().clone().requires_grad_(True)
pre = ref.naive_pre(q, xr, transcode)
vals, idx_ref = ref.naive_select(pre, k, activation)
same_sets = bool((idx.sort(-1).values == idx_ref.sort(-1).values).all())
vals_at_idx = pre.gather(1, idx)
(vals_at_idx * G).sum().backward()
result = {
  "same_sets": same_sets,
  "positive": bool((acts > 0).all()),
  "values": (acts - vals_at_idx).abs().max().item(),
  "pre": (pre_k - pre).abs().max().item(),
  "dx": (x.grad - xr.grad).abs().max().item(),
  "dW": (p["encoder.weight"].grad - q["encoder.weight"].grad).abs().max().item(),
  "db": (p["encoder.bias"].grad - q["encoder.bias"].grad).abs().max().item(),
  "db_dec": 0.0 if transcode else (p["b_dec"].grad - q["b_dec"].grad).abs().max().item(),
  "b_dec_grad_none": p["b_dec"].grad is None,
  "scale": x.grad.abs().max().item(),
}`,
        { ref, p: coder.params, x, acts: enc.topActs, idx: enc.topIndices, pre_k: enc.preActs, k: c.k, activation: c.activation, transcode: c.transcode },
      );
      expect(r.same_sets).toBe(true);
      expect(r.positive).toBe(true); // the precondition for equality with autograd
      expect(r.values).toBeLessThan(1e-6);
      expect(r.pre).toBeLessThan(1e-6);
      expect(r.dx).toBeLessThan(1e-5);
      expect(r.dW).toBeLessThan(1e-5);
      expect(r.db).toBeLessThan(1e-5);
      expect(r.db_dec).toBeLessThan(1e-5);
      expect(r.b_dec_grad_none).toBe(c.transcode); // transcoders do not subtract b_dec
      expect(r.scale as number).toBeGreaterThan(1e-3);
    });
  }

  it('follows the hand-written rule (no relu mask) where selected pre-activations were clipped to 0', async () => {
    const coder = await SparseCoder.create(16, { k: 8, numLatents: 64 }, { seed: 3 });
    // Very negative biases: most pre-activations are clipped, so some selected values are 0.
    await py('with torch.no_grad(): p["encoder.bias"].fill_(-3.0)', { p: coder.params });
    const x = await randn([10, 16], 5, true);
    const enc = await coder.encode(x, { grad: true });
    const r = await py<Record<string, number | boolean>>(
      `
G = torch.randn(acts.shape, generator=torch.Generator().manual_seed(9))
(acts * G).sum().backward()
W = p["encoder.weight"].detach()
xin = (x - p["b_dec"]).detach()
want_db = torch.zeros(W.shape[0]).index_add_(0, idx.flatten(), G.flatten())
want_dW = torch.zeros_like(W).index_add_(0, idx.flatten(), (G.unsqueeze(2) * xin.unsqueeze(1)).reshape(-1, W.shape[1]))
want_dx = F.embedding_bag(idx, W, mode="sum", per_sample_weights=G)
result = {
  "zeros_selected": int((acts == 0).sum()),
  "db": (p["encoder.bias"].grad - want_db).abs().max().item(),
  "dW": (p["encoder.weight"].grad - want_dW).abs().max().item(),
  "dx": (x.grad - want_dx).abs().max().item(),
  "grad_at_clipped": p["encoder.bias"].grad[idx[acts == 0]].abs().max().item(),
}`,
      { p: coder.params, x, acts: enc.topActs, idx: enc.topIndices },
    );
    expect(r.zeros_selected as number).toBeGreaterThan(0);
    expect(r.grad_at_clipped as number).toBeGreaterThan(0); // autograd of relu would give 0 here
    expect(r.db).toBeLessThan(1e-5);
    expect(r.dW).toBeLessThan(1e-5);
    expect(r.dx).toBeLessThan(1e-5);
  });
});

describe('decode', () => {
  it('equals the dense reference (scatter into [N, M], then @ W_dec + b_dec)', async () => {
    const coder = await SparseCoder.create(24, { k: 6, numLatents: 96 }, { seed: 1 });
    await randomizeBiases(coder, 11);
    const x = await randn([14, 24], 12);
    const enc = await coder.encode(x);
    const out = await coder.decode(enc.topActs, enc.topIndices);
    expect(out.shape).toEqual([14, 24]);
    const diff = await py<number>('result = (out - ref.dense_decode(p, acts, idx)).abs().max().item()', {
      ref,
      out,
      p: coder.params,
      acts: enc.topActs,
      idx: enc.topIndices,
    });
    expect(diff).toBeLessThan(1e-5);
  });
});

describe('forward losses', () => {
  const variants = [
    { label: 'SAE, no dead latents', transcode: false, skip: false, multiTopk: false, dead: 'none' },
    { label: 'SAE with AuxK (few dead: scale < 1) and multi-topk', transcode: false, skip: false, multiTopk: true, dead: 'few' },
    { label: 'SAE with AuxK (many dead: scale = 1)', transcode: false, skip: false, multiTopk: false, dead: 'many' },
    { label: 'SAE with an all-false dead mask', transcode: false, skip: false, multiTopk: false, dead: 'zero' },
    { label: 'transcoder with skip connection and AuxK', transcode: true, skip: true, multiTopk: true, dead: 'many' },
  ] as const;
  for (const [i, v] of variants.entries()) {
    it(`fvu, auxk_loss and multi_topk_fvu equal the SPEC formulas, and so do their gradients: ${v.label}`, async () => {
      const d = 32;
      const m = 128;
      const k = 4;
      const coder = await SparseCoder.create(d, { k, numLatents: m, transcode: v.transcode, skipConnection: v.skip, multiTopk: v.multiTopk }, { seed: 20 + i });
      await randomizeBiases(coder, 30 + i);
      if (v.transcode || v.skip) {
        await py('g = torch.Generator().manual_seed(s)\nwith torch.no_grad():\n  p["W_dec"].copy_(torch.randn(p["W_dec"].shape, generator=g) * 0.1)\n  if "W_skip" in p: p["W_skip"].copy_(torch.randn(p["W_skip"].shape, generator=g) * 0.05)', {
          p: coder.params,
          s: 40 + i,
        });
      }
      const x = await randn([40, d], 50 + i);
      const y = v.transcode ? await randn([40, d], 60 + i) : undefined;
      const deadCount = { none: -1, zero: 0, few: 5, many: 100 }[v.dead];
      const deadMask =
        deadCount < 0 ? undefined : await py<Tensor>('m = torch.zeros(M, dtype=torch.bool)\nm[torch.randperm(M, generator=torch.Generator().manual_seed(1))[:n]] = True\nresult = m', { M: m, n: deadCount });
      const out = await coder.forward(x, y, { grad: true, deadMask });
      expect(out.saeOut.shape).toEqual([40, d]);
      const r = await py<Record<string, number>>(
        `
loss = out_fvu + out_auxk + out_mtk / 8
loss.backward()
q = ref.leaf_copy(dict(p))
want = ref.naive_forward(q, x, y, dead_mask, k, "topk", transcode, skip, mtk)
(want["fvu"] + want["auxk"] + want["mtk"] / 8).backward()
grads = {n: (p[n].grad - q[n].grad).abs().max().item() for n in p if q[n].grad is not None}
result = {
  "sae_out": (out_sae - want["sae_out"]).abs().max().item(),
  "fvu": abs(out_fvu.item() - want["fvu"].item()),
  "auxk": abs(out_auxk.item() - want["auxk"].item()),
  "mtk": abs(out_mtk.item() - want["mtk"].item()),
  "auxk_value": out_auxk.item(),
  "mtk_value": out_mtk.item(),
  "fvu_value": out_fvu.item(),
  "max_grad_diff": max(grads.values()),
}`,
        {
          ref,
          p: coder.params,
          x,
          y: y ?? null,
          dead_mask: deadMask ?? null,
          k,
          transcode: v.transcode,
          skip: v.skip,
          mtk: v.multiTopk,
          out_sae: out.saeOut,
          out_fvu: out.fvu,
          out_auxk: out.auxkLoss,
          out_mtk: out.multiTopkFvu,
        },
      );
      expect(r.sae_out).toBeLessThan(1e-5);
      expect(r.fvu).toBeLessThan(1e-5);
      expect(r.auxk).toBeLessThan(1e-5);
      expect(r.mtk).toBeLessThan(1e-5);
      expect(r.fvu_value).toBeGreaterThan(0);
      if (deadCount > 0) expect(r.auxk_value).toBeGreaterThan(0);
      else expect(r.auxk_value).toBe(0);
      if (v.multiTopk) expect(r.mtk_value).toBeGreaterThan(0);
      else expect(r.mtk_value).toBe(0);
expect(r.max_grad_diff).toBeLessThan(1e-5);
    });
  }
});

describe('decoder maintenance', () => {
  it('setDecoderNormToUnitNorm gives unit rows: W / (norm + eps)', async () => {
    const coder = await SparseCoder.create(20, { k: 4, numLatents: 40 }, { seed: 2 });
    await py('with torch.no_grad(): p["W_dec"].mul_(torch.linspace(0.5, 3.0, 40)[:, None])', { p: coder.params });
    const before = await py<Tensor>('result = p["W_dec"].detach().clone()', { p: coder.params });
    await coder.setDecoderNormToUnitNorm();
    const r = await py<Record<string, number>>(
      'want = before / (torch.norm(before, dim=1, keepdim=True) + torch.finfo(before.dtype).eps)\nresult = {"diff": (p["W_dec"] - want).abs().max().item(), "norm": (p["W_dec"].norm(dim=1) - 1).abs().max().item()}',
      { p: coder.params, before },
    );
    expect(r.diff).toBe(0);
    expect(r.norm).toBeLessThan(1e-6);
  });

  it('removeGradientParallelToDecoderDirections: grad_i -= (grad_i . W_i) W_i', async () => {
    const coder = await SparseCoder.create(20, { k: 4, numLatents: 40 }, { seed: 4 });
    const x = await randn([30, 20], 8);
    const out = await coder.forward(x, undefined, { grad: true });
    const before = await py<Tensor>('fvu.backward()\nresult = p["W_dec"].grad.clone()', { fvu: out.fvu, p: coder.params });
    await coder.removeGradientParallelToDecoderDirections();
    const r = await py<Record<string, number>>(
      'W = p["W_dec"].detach()\nwant = before - (before * W).sum(1, keepdim=True) * W\ng = p["W_dec"].grad\nresult = {"diff": (g - want).abs().max().item(), "parallel": (g * W).sum(1).abs().max().item(), "size": before.abs().max().item()}',
      { p: coder.params, before },
    );
    expect(r.size).toBeGreaterThan(1e-4);
    expect(r.diff).toBeLessThan(1e-6);
    expect(r.parallel).toBeLessThan(1e-6);
  });
});

describe('initialisation', () => {
  for (const variant of [
    { transcode: false, skipConnection: false, normalizeDecoder: true },
    { transcode: true, skipConnection: true, normalizeDecoder: true },
    { transcode: false, skipConnection: false, normalizeDecoder: false },
  ]) {
    it(`same seed gives bit-identical weights to the reference init: ${JSON.stringify(variant)}`, async () => {
      const coder = await SparseCoder.create(48, { k: 8, expansionFactor: 4, ...variant }, { seed: 17 });
      const r = await py<Record<string, boolean>>(
        'want = ref.reference_init(48, 192, 17, transcode=tc, normalize=norm, skip=skip)\nresult = {n: bool(torch.equal(p[n].detach(), want[n])) for n in want}\nresult["same_names"] = sorted(want) == sorted(p)\nresult["leaf"] = all(t.requires_grad and t.is_leaf for t in p.values())',
        { ref, p: coder.params, tc: variant.transcode, norm: variant.normalizeDecoder, skip: variant.skipConnection },
      );
      for (const [k, v] of Object.entries(r)) expect([k, v]).toEqual([k, true]);
    });
  }
});
