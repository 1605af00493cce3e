// jumprelu: one training step of the trainer's hook gives dictionary_learning's JumpReluTrainer
// loss and gradients (its JumpReLUFunction, StepFunction and RectangleFunction, restated in
// test/helpers/dictionary_learning.py; checked against the library itself where a checkout is
// in .reference/), with the settings aligned where sparsify differs on purpose (its SAEs centre
// the input by b_dec; its fvu is dictionary_learning's loss over total variance / tokens);
// inference encodes relu(pre * (pre > theta)); it trains; and its bad inputs are one line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { trainConfig } from '../../src/config/train.js';
import { parseArgs } from '../../src/cli/main.js';
import { evaluate } from '../../src/eval/index.js';
import { bind, runPasses, runProgram } from '../../src/kernels/index.js';
import * as P from '../../src/trainer/programs.js';
import { Trainer } from '../../src/trainer/trainer.js';
import { py, randn } from '../helpers/python.js';
import { DL_CHECKOUT, DL_HELPER, DL_SITE, LAYER0_PRELUDE } from '../helpers/dictionary-learning.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';

let work: string;
let fx: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-jumprelu-'));
  fx = await tinyFixture(work, { rows: 48, ctxLen: 16 });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

const HELPER = DL_HELPER;
const CHECKOUT = DL_CHECKOUT;
const SITE = DL_SITE;
/** The helper as \`dl\`, and x: layers.0's output on rows 0..4 (the SAE's input). */
const PRELUDE = `${LAYER0_PRELUDE}x = y\n`;

/** A jumprelu coder with thresholds spread over the pre-activations (so that the rectangle windows hold entries) and a nonzero b_dec. */
async function coderWithThresholds(bandwidth: number): Promise<SparseCoder> {
  const coder = await SparseCoder.create(32, { activation: 'jumprelu', numLatents: 64, jumpreluBandwidth: bandwidth }, { seed: 1 });
  await py('g = torch.Generator().manual_seed(2)\nwith torch.no_grad():\n  p["threshold"].copy_(torch.rand(64, generator=g) * 0.6 + 0.05)\n  p["b_dec"].copy_(torch.randn(32, generator=g) * 0.05)', { p: coder.params });
  return coder;
}

describe('jumprelu', () => {
  for (const [label, target, sparseBackward] of [
    ['towards a target L0', 6, 'index_add'],
    ['an L0 penalty', null, 'index_add'],
    ['towards a target L0, gemm kernels', 6, 'gemm'],
  ] as const) {
    it(`one step gives dictionary_learning's loss and gradients: ${label}`, async () => {
      const bandwidth = 0.2;
      const coder = await coderWithThresholds(bandwidth);
      const s = coder.structure;
      expect(s.bandwidth).toBe(bandwidth);
      const ref = await py('result = {k: v.detach().clone() for k, v in p.items()}', { p: coder.params });
      const { state } = await runProgram(P.stateInitProgram(s, 'adam'), { params: coder.params });
      const coefficient = 0.3;
      const hook = bind(P.fvuHookProgram(s, { auxkBias: true, sparseBackward }), {
        params: coder.params,
        state,
        k: 32,
        deadThreshold: null,
        initBiases: false,
        ddp: false,
        thresholdBeta: null,
        l0Coefficient: coefficient,
        targetL0: target,
        auxkAlpha: 0,
        accSteps: 1,
        micro: 1,
        autocast: false,
      });
      const reply = await runPasses({ model: fx.model.model, rows: fx.data.rows, batches: [[0, 4]], passes: [{ hooks: [{ key: 'c', module: 'layers.0', program: hook }] }], device: 'cpu' });
      const r = await py<{ loss: number; l0: number; window: number; grads: Record<string, number>; ours: number }>(
        `${PRELUDE}
q = {n: t.clone() for n, t in ref.items()}
with torch.no_grad():
  q["W_dec"] /= torch.norm(q["W_dec"], dim=1, keepdim=True) + torch.finfo(torch.float32).eps
# dictionary_learning's parameters: W_enc [D, M] is sparsify's encoder.weight transposed.
d = {"W_enc": q["encoder.weight"].T.contiguous(), "b_enc": q["encoder.bias"], "W_dec": q["W_dec"], "b_dec": q["b_dec"], "threshold": q["threshold"]}
d = {n: t.detach().clone().requires_grad_(True) for n, t in d.items()}
# Its loss is ours times total variance / tokens: the same balance takes its coefficient scaled by that.
scale = ((x - x.mean(0)) ** 2).sum().item() / x.shape[0]
out = dl["jumprelu_loss"](d, x, bw, coef * scale, target, 1.0, centre=True)
out["loss"].backward()
pre = (x - d["b_dec"]) @ d["W_enc"] + d["b_enc"]
window = int((((pre - d["threshold"]) / bw).abs() < 0.5).sum())
theirs = {"encoder.weight": d["W_enc"].grad.T, "encoder.bias": d["b_enc"].grad, "W_dec": d["W_dec"].grad, "b_dec": d["b_dec"].grad, "threshold": d["threshold"].grad}
grads = {n: ((p[n].grad * scale - theirs[n]).norm() / theirs[n].norm().clamp_min(1e-12)).item() for n in theirs}
ours = fvu + (coef * l0 if target is None else coef * (l0 / target - 1) ** 2)
result = {"loss": out["loss"].item(), "ours": ours * scale, "l0": out["l0"].item(), "window": window, "grads": grads}`,
        { helper: HELPER, rows: fx.data.rows, model: fx.model.model, ref, p: coder.params, bw: bandwidth, coef: coefficient, target, fvu: reply.metrics.c!.fvu!, l0: reply.metrics.c!.l0! },
      );
      // Entries sit in the rectangle windows, so the thresholds' pseudo-derivatives are exercised.
      expect(r.window).toBeGreaterThan(10);
      expect(reply.metrics.c!.l0).toBeCloseTo(r.l0, 5);
      expect(Math.abs(r.ours - r.loss) / r.loss).toBeLessThan(1e-5);
      for (const [name, rel] of Object.entries(r.grads)) expect([name, rel]).toEqual([name, expect.any(Number)]), expect(rel).toBeLessThan(1e-5);
      expect(Object.keys(r.grads).sort()).toEqual(['W_dec', 'b_dec', 'encoder.bias', 'encoder.weight', 'threshold']);
    });
  }

  it.skipIf(!existsSync(join(CHECKOUT, 'dictionary_learning', 'trainers', 'jumprelu.py')) || !existsSync(SITE))(
    'the restatement is dictionary_learning itself: JumpReluTrainer.loss, same parameters and activations',
    async () => {
      const r = await py<{ loss: number; grads: number }>(
        `
import sys, pathlib
sys.path.insert(0, site)
dl = {}
exec(pathlib.Path(helper).read_text(), dl)
lib = dl["real"](checkout)["jumprelu"]
torch.manual_seed(0)
trainer = lib.JumpReluTrainer(steps=10, activation_dim=16, dict_size=40, layer=0, lm_name="x", warmup_steps=1, bandwidth=0.3, sparsity_penalty=0.7, sparsity_warmup_steps=4, target_l0=5.0)
with torch.no_grad():
  trainer.ae.threshold.copy_(torch.rand(40) * 0.5)
  trainer.ae.b_enc.copy_(torch.randn(40) * 0.1)
x = torch.randn(24, 16)
loss = trainer.loss(x, step=2)
loss.backward()
ae = trainer.ae
q = {n: getattr(ae, n).detach().clone().requires_grad_(True) for n in ["W_enc", "b_enc", "W_dec", "b_dec", "threshold"]}
mine = dl["jumprelu_loss"](q, x, 0.3, 0.7, 5.0, dl["sparsity_warmup"](2, 4))["loss"]
mine.backward()
result = {"loss": abs(mine.item() - loss.item()), "grads": max((q[n].grad - getattr(ae, n).grad).abs().max().item() for n in q)}`,
        { helper: HELPER, checkout: CHECKOUT, site: SITE },
      );
      expect(r.loss).toBe(0);
      expect(r.grads).toBe(0);
    },
  );

  it('inference encodes relu(pre * (pre > theta)), each token its own count', async () => {
    const coder = await coderWithThresholds(0.001);
    const x = await randn([30, 32], 5);
    const { topActs, topIndices, preActs } = await coder.encode(x);
    const r = await py<{ equal: boolean; rowsDiffer: boolean }>(
      `pre = torch.relu((x - p["b_dec"]) @ p["encoder.weight"].T + p["encoder.bias"])
want = torch.relu(pre * (pre > p["threshold"]))
got = torch.zeros_like(pre).scatter_add_(1, i, a)
counts = (got > 0).sum(1)
result = {"equal": bool(torch.allclose(got, want, atol=1e-6) and torch.allclose(pre, pa, atol=1e-6)), "rowsDiffer": bool(counts.min() != counts.max())}`,
      { x, p: coder.params, i: topIndices, a: topActs, pa: preActs },
    );
    expect(r).toEqual({ equal: true, rowsDiffer: true });
  });

  it('bad settings are one line naming them', () => {
    expect(() => trainConfig({ sae: { activation: 'jumprelu', k: 16 } })).toThrow(/sae.k: jumprelu does not select by k \(its thresholds do; aim at an L0 with --target_l0\), so leave k at its default/);
    expect(() => parseArgs(['gpt2', '--activation', 'jumprelu', '-k', '16'])).toThrow(/^sparsify: -k: jumprelu does not select by k/);
    expect(() => trainConfig({ sae: { activation: 'jumprelu', multiTopk: true } })).toThrow(/multi_topk: jumprelu does not select by k, so it has no 4k latents to train/);
    expect(() => trainConfig({ sae: { activation: 'jumprelu' }, kDecaySteps: 10 })).toThrow(/jumprelu does not select by k, so there is no k to decay/);
    expect(() => trainConfig({ targetL0: 10 })).toThrow(/target_l0: only applies to an activation trained towards an L0 \(jumprelu\); this run trains topk/);
    expect(() => trainConfig({ sae: { activation: 'jumprelu' }, targetL0: 0 })).toThrow(/target_l0/);
    expect(trainConfig({ sae: { activation: 'jumprelu' }, targetL0: 10, sweep: ['activation=topk,jumprelu'] }).targetL0).toBe(10);
  });

  it('trains towards its target L0 and saves its thresholds; eval measures the L0 they give', async () => {
    const lines: Record<string, number>[] = [];
    const cfg = {
      sae: { activation: 'jumprelu' as const, numLatents: 64 },
      targetL0: 4,
      sparsityWarmupSteps: 0,
      lr: 0.02,
      batchSize: 4,
      logToWandb: false,
      saveDir: work,
      runName: 'jr',
      saveEvery: 1000,
      hookpoints: ['layers.0'],
    };
    await new Trainer(cfg, fx.data, fx.model, { log: () => undefined, onStep: (s) => lines.push(s.metrics['layers.0'] as Record<string, number>) }).fit();
    expect(lines[0]!.l0).toBeGreaterThan(20);
    expect(lines[lines.length - 1]!.l0!).toBeLessThan(lines[0]!.l0! / 2);
    expect(lines[lines.length - 1]!.sparsity_loss!).toBeLessThan(lines[0]!.sparsity_loss!);
    const dir = join(work, 'jr', 'layers.0');
    const json = JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8')) as Record<string, unknown>;
    expect(json.activation).toBe('jumprelu');
    expect(json.jumprelu_bandwidth).toBe(0.001);
    const coder = await SparseCoder.loadFromDisk(dir);
    expect(await py<number[]>('result = list(p["threshold"].shape)', { p: coder.params })).toEqual([64]);
    const report = await evaluate(fx.model, new Map([['layers.0', coder]]), fx.data, { rows: [0, 16], splice: 'none' });
    expect(report.coders['layers.0']!.l0).toBeGreaterThan(0);
    expect(report.coders['layers.0']!.l0).toBeLessThan(lines[0]!.l0!);
  }, 120_000);
});
