// Matryoshka training, and one BatchTopK step, side by side with dictionary_learning: one hook
// step gives its BatchTopKTrainer and MatryoshkaBatchTopKTrainer losses, gradients and threshold
// update (restated in test/helpers/dictionary_learning.py, checked against the library itself
// where a checkout is in .reference/); with the settings aligned where sparsify differs on
// purpose: its loss is fvu (dictionary_learning's over total variance / tokens) and a weighted
// sum over the prefixes (dictionary_learning's is their mean, a further 1 / groups), AuxK off
// (sparsify's is the reference's). With topk transcoders and jumprelu, the gradients are those
// of the plain formula; it trains in a sweep; and its bad inputs are one line each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { parseArgs } from '../../src/cli/main.js';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { checkCoderShape, sparseCoderConfig, type SparseCoderConfigInput } from '../../src/config/sparse-coder.js';
import { trainConfig } from '../../src/config/train.js';
import { bind, runPasses, runProgram } from '../../src/kernels/index.js';
import type { SparseBackward } from '../../src/math/index.js';
import * as P from '../../src/trainer/programs.js';
import { Trainer } from '../../src/trainer/trainer.js';
import { py } from '../helpers/python.js';
import { DL_CHECKOUT, DL_HELPER, DL_SITE, LAYER0_PRELUDE } from '../helpers/dictionary-learning.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';

let work: string;
let fx: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-matryoshka-'));
  fx = await tinyFixture(work, { rows: 48, ctxLen: 16 });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

const HELPER = DL_HELPER;
const CHECKOUT = DL_CHECKOUT;
const SITE = DL_SITE;
const PRELUDE = LAYER0_PRELUDE;

/** One fvu hook step of `coder` on rows 0..4 at layers.0: its metrics; gradients stay on the parameters. */
async function hookStep(coder: SparseCoder, options: { k: number; sparseBackward?: SparseBackward; thresholdBeta?: number; l0Coefficient?: number }) {
  const s = coder.structure;
  const { state } = await runProgram(P.stateInitProgram(s, 'adam'), { params: coder.params });
  const hook = bind(P.fvuHookProgram(s, { auxkBias: true, sparseBackward: options.sparseBackward ?? 'index_add' }), {
    params: coder.params,
    state,
    k: options.k,
    deadThreshold: null,
    initBiases: false,
    ddp: false,
    thresholdBeta: options.thresholdBeta ?? null,
    l0Coefficient: options.l0Coefficient ?? null,
    targetL0: null,
    auxkAlpha: 0,
    accSteps: 1,
    micro: 1,
    autocast: false,
  });
  const reply = await runPasses({ model: fx.model.model, rows: fx.data.rows, batches: [[0, 4]], passes: [{ hooks: [{ key: 'c', module: 'layers.0', program: hook }] }], device: 'cpu' });
  return reply.metrics.c!;
}

/** A coder whose decoder is not its encoder's transpose and whose b_dec is not zero (so that every gradient term shows). */
async function perturbed(cfg: SparseCoderConfigInput, seed: number): Promise<SparseCoder> {
  const coder = await SparseCoder.create(32, { numLatents: 64, ...cfg }, { seed });
  await py(`g = torch.Generator().manual_seed(${seed + 1})
with torch.no_grad():
  p["b_dec"].copy_(torch.randn(32, generator=g) * 0.05)
  p["W_dec"].add_(torch.randn(p["W_dec"].shape, generator=g) * 0.3)
  if "threshold" in p and p["threshold"].dim() == 1: p["threshold"].copy_(torch.rand(64, generator=g) * 0.3 + 0.05)
  elif "threshold" in p: p["threshold"].fill_(0.05)`, { p: coder.params });
  return coder;
}

/** The parameters before the step, W_dec at unit norm as the hook makes it (dictionary_learning keeps it so). */
const SNAPSHOT = 'result = {n: t.detach().clone() for n, t in p.items()}';
const UNIT_DECODER = `q = {n: t.clone().requires_grad_(n != "threshold") for n, t in ref.items()}
with torch.no_grad():
  q["W_dec"] /= torch.norm(q["W_dec"], dim=1, keepdim=True) + torch.finfo(torch.float32).eps
`;

describe('matryoshka and batchtopk, side by side with dictionary_learning', () => {
  for (const [label, prefixes, sparseBackward] of [
    ['BatchTopK', [], 'index_add'],
    ['Matryoshka BatchTopK', [16, 40], 'index_add'],
    ['Matryoshka BatchTopK, gemm kernels', [8, 24, 48], 'gemm'],
  ] as const) {
    it(`one step gives its loss, gradients and threshold update: ${label}`, async () => {
      const coder = await perturbed({ activation: 'batchtopk', k: 4, matryoshkaPrefixes: [...prefixes] }, 11);
      const ref = await py(SNAPSHOT, { p: coder.params });
      const beta = 0.9;
      const m = await hookStep(coder, { k: 4, sparseBackward, thresholdBeta: beta });
      const r = await py<{ loss: number; ours: number; grads: Record<string, number>; theta: number; want: number }>(
        `${PRELUDE}
x = y  # an SAE of the module's output
${UNIT_DECODER}
groups = [b - a for a, b in zip([0] + prefixes, prefixes + [64])]
if len(groups) == 1:
  loss, f = dl["batch_topk_l2"](q, x, 4)
  ours = fvu * tv / x.shape[0]
else:
  f, _ = dl["batch_topk_encode"](q, x, 4)
  loss, _ = dl["matryoshka_l2"](q, x, f, groups, [1 / len(groups)] * len(groups))
  ours = mat * tv / x.shape[0] / len(groups)
loss.backward()
scale = tv / x.shape[0] / len(groups)
grads = {n: ((p[n].grad * scale - q[n].grad).norm() / q[n].grad.norm().clamp_min(1e-12)).item() for n in ["encoder.weight", "encoder.bias", "W_dec", "b_dec"]}
want = dl["batch_topk_update_threshold"](ref["threshold"].item(), f, beta)
result = {"loss": loss.item(), "ours": ours, "grads": grads, "theta": p["threshold"].item(), "want": float(want)}`,
        { helper: HELPER, rows: fx.data.rows, model: fx.model.model, ref, p: coder.params, prefixes: [...prefixes], fvu: m.fvu!, mat: m.matryoshka_loss ?? null, tv: await totalVariance(), beta },
      );
      expect(Math.abs(r.ours - r.loss) / r.loss).toBeLessThan(1e-5);
      for (const [name, rel] of Object.entries(r.grads)) expect([name, rel < 1e-5]).toEqual([name, true]);
      expect(Math.abs(r.theta - r.want) / r.want).toBeLessThan(1e-5);
      if (prefixes.length) expect(m.matryoshka_loss!).toBeGreaterThan(m.fvu!);
    });
  }

  it.skipIf(!existsSync(join(CHECKOUT, 'dictionary_learning', 'trainers', 'matryoshka_batch_top_k.py')) || !existsSync(SITE))(
    'the restatement is dictionary_learning itself: MatryoshkaBatchTopKTrainer.loss and BatchTopKTrainer.loss',
    async () => {
      const r = await py<{ diffs: number[] }>(
        `
import sys, pathlib
sys.path.insert(0, site)
dl = {}
exec(pathlib.Path(helper).read_text(), dl)
lib = dl["real"](checkout)
diffs = []
for kind in ["matryoshka", "batch_top_k"]:
  torch.manual_seed(0)
  if kind == "matryoshka":
    trainer = lib[kind].MatryoshkaBatchTopKTrainer(steps=10, activation_dim=16, dict_size=40, k=3, layer=0, lm_name="x", group_fractions=[0.25, 0.25, 0.5], warmup_steps=1)
  else:
    trainer = lib[kind].BatchTopKTrainer(steps=10, activation_dim=16, dict_size=40, k=3, layer=0, lm_name="x", warmup_steps=1)
  ae = trainer.ae
  # Its two SAEs hold the same parameters under different names (nn.Linear's for BatchTopKSAE).
  names = {"encoder.weight": "W_enc", "encoder.bias": "b_enc", "W_dec": "W_dec", "b_dec": "b_dec"} if kind == "matryoshka" else {"encoder.weight": "encoder.weight", "encoder.bias": "encoder.bias", "W_dec": "decoder.weight", "b_dec": "b_dec"}
  theirs = {n: ae.get_parameter(a) for n, a in names.items()}
  with torch.no_grad():
    theirs["encoder.bias"].copy_(torch.randn(40) * 0.1)
    theirs["b_dec"].copy_(torch.randn(16) * 0.1)
  x = torch.randn(24, 16)
  loss = trainer.loss(x, step=2)
  loss.backward()
  # In sparsify's layout: encoder.weight [M, D], W_dec [M, D].
  layout = {"encoder.weight": (lambda t: t.T) if kind == "matryoshka" else (lambda t: t), "W_dec": (lambda t: t) if kind == "matryoshka" else (lambda t: t.T)}
  as_ours = lambda n, t: layout.get(n, lambda t: t)(t)
  q = {n: as_ours(n, theirs[n].detach()).clone().requires_grad_(True) for n in names}
  if kind == "matryoshka":
    f, _ = dl["batch_topk_encode"](q, x, 3)
    mine, _ = dl["matryoshka_l2"](q, x, f, [10, 10, 20], [1 / 3] * 3)
  else:
    mine, _ = dl["batch_topk_l2"](q, x, 3)
  mine.backward()
  diffs.append(abs(mine.item() - loss.item()))
  diffs.append(max((q[n].grad - as_ours(n, theirs[n].grad)).abs().max().item() for n in q))
result = {"diffs": diffs}`,
        { helper: HELPER, checkout: CHECKOUT, site: SITE },
      );
      // Its AuxK is 0 here (nothing is dead yet), so its whole loss is the restated one.
      expect(r.diffs).toEqual([0, 0, 0, 0]);
    },
  );

  it('with topk transcoders and skip connections, and with jumprelu: gradients of the plain formula', async () => {
    const weights = [0.5, 0.2, 0.3];
    const cases: [string, SparseCoderConfigInput, string][] = [
      [
        'topk transcoder with skip',
        { activation: 'topk', k: 6, transcode: true, skipConnection: true, matryoshkaPrefixes: [12, 30], matryoshkaWeights: weights },
        `f_all = torch.relu(x @ q["encoder.weight"].T + q["encoder.bias"])
top = f_all.topk(6, dim=-1)
f = torch.zeros_like(f_all).scatter(1, top.indices, top.values)
base = q["b_dec"] + x @ q["W_skip"].T
target = y`,
      ],
      [
        'jumprelu',
        { activation: 'jumprelu', matryoshkaPrefixes: [12, 30], matryoshkaWeights: weights, jumpreluBandwidth: 0.1 },
        `pre = (y - q["b_dec"]) @ q["encoder.weight"].T + q["encoder.bias"]
f = dl["JumpReLUFunction"].apply(pre, q["threshold"], 0.1)
base = q["b_dec"]
target = y`,
      ],
    ];
    for (const [label, cfg, dense] of cases) {
      const coder = await perturbed(cfg, 21);
      const ref = await py(SNAPSHOT, { p: coder.params });
      const m = await hookStep(coder, { k: 6, l0Coefficient: 0 });
      const r = await py<{ loss: number; fvu: number; grads: Record<string, number> }>(
        `${PRELUDE}
q = {n: t.clone().requires_grad_(True) for n, t in ref.items()}
if not transcode:
  with torch.no_grad():
    q["W_dec"] /= torch.norm(q["W_dec"], dim=1, keepdim=True) + torch.finfo(torch.float32).eps
${dense}
tv = (target - target.mean(0)).pow(2).sum()
loss = 0
for m, w in zip([12, 30, 64], weights):
  recon = base + f[:, :m] @ q["W_dec"][:m]
  loss = loss + w * (target - recon).pow(2).sum() / tv
loss.backward()
grads = {n: ((p[n].grad - q[n].grad).norm() / q[n].grad.norm().clamp_min(1e-12)).item() for n in q if q[n].grad is not None}
result = {"loss": loss.item(), "fvu": ((target - recon).pow(2).sum() / tv).item(), "grads": grads}`,
        { helper: HELPER, rows: fx.data.rows, model: fx.model.model, ref, p: coder.params, weights, transcode: cfg.transcode === true },
      );
      expect([label, Math.abs(m.matryoshka_loss! - r.loss) / r.loss < 1e-5, Math.abs(m.fvu! - r.fvu) / r.fvu < 1e-5]).toEqual([label, true, true]);
      const names = cfg.activation === 'jumprelu' ? ['W_dec', 'b_dec', 'encoder.bias', 'encoder.weight', 'threshold'] : ['W_dec', 'W_skip', 'b_dec', 'encoder.bias', 'encoder.weight'];
      expect([label, Object.keys(r.grads).sort()]).toEqual([label, names]);
      for (const [name, rel] of Object.entries(r.grads)) expect([label, name, rel < 1e-5]).toEqual([label, name, true]);
    }
  });

  it('trains in a sweep beside a coder without prefixes, and cfg.json records them', async () => {
    const lines: Record<string, Record<string, number>>[] = [];
    const cfg = { sae: { activation: 'batchtopk' as const, k: 4, numLatents: 64 }, sweep: ['matryoshka_prefixes=none,16:32'], lr: 0.01, batchSize: 8, logToWandb: false, saveDir: work, runName: 'mat', saveEvery: 1000, hookpoints: ['layers.0'] };
    await new Trainer(cfg, fx.data, fx.model, { log: () => undefined, onStep: (s) => lines.push(s.metrics as Record<string, Record<string, number>>) }).fit();
    const first = lines[0]!['layers.0/mat16_32']!;
    const last = lines[lines.length - 1]!['layers.0/mat16_32']!;
    expect(last.fvu!).toBeLessThan(first.fvu!);
    expect(last.matryoshka_loss!).toBeLessThan(first.matryoshka_loss!);
    expect(lines[0]!['layers.0/mat-none']!.matryoshka_loss).toBeUndefined();
    const saved = JSON.parse(readFileSync(join(work, 'mat', 'layers.0', 'mat16_32', 'cfg.json'), 'utf8')) as Record<string, unknown>;
    expect(saved.matryoshka_prefixes).toEqual([16, 32]);
    expect(saved).not.toHaveProperty('matryoshka_weights');
    const coder = (await SparseCoder.loadMany(join(work, 'mat'))).get('layers.0/mat16_32')!;
    expect(coder.cfg.matryoshkaPrefixes).toEqual([16, 32]);
  });

  it('bad settings are one line naming them', () => {
    expect(() => sparseCoderConfig({ matryoshkaPrefixes: [32, 16] })).toThrow(/^sparse coder config: matryoshka_prefixes: 32 16: each prefix must be larger than the one before \(16 follows 32\)$/);
    expect(() => sparseCoderConfig({ matryoshkaPrefixes: [16], matryoshkaWeights: [1] })).toThrow(/matryoshka_weights: 1: give 2 weights, one per prefix of matryoshka_prefixes \(16\) and the last for all the latents/);
    expect(() => sparseCoderConfig({ matryoshkaWeights: [1, 1] })).toThrow(/matryoshka_weights: weighs the prefixes of matryoshka_prefixes, and none are given/);
    expect(() => checkCoderShape(sparseCoderConfig({ matryoshkaPrefixes: [16, 256] }), 4, 'layers.0')).toThrow(/^layers\.0: matryoshka_prefixes: 256 is not below the number of latents \(128\); each prefix must leave latents after it$/);
    expect(() => trainConfig({ sae: { numLatents: 64, matryoshkaPrefixes: [64] } })).toThrow(/sae\.matryoshka_prefixes: 64 is not below num_latents=64/);
    expect(() => trainConfig({ sae: { matryoshkaPrefixes: [16] }, lossFn: 'ce' })).toThrow(/sae\.matryoshka_prefixes: trains with loss_fn fvu only \(got ce\)/);
    expect(() => parseArgs(['gpt2', '--matryoshka_prefixes', '64', '16'])).toThrow(/^sparsify: .*matryoshka_prefixes: 64 16: each prefix must be larger/);
    expect(() => trainConfig({ sweep: ['matryoshka_prefixes=16:x'] })).toThrow(/matryoshka_prefixes=16:x: matryoshka_prefixes takes lists written a:b:c \(or none\) of whole numbers above 0/);
  });
});

/** The total variance of layers.0's output on rows 0..4 (sparsify's fvu denominator). */
async function totalVariance(): Promise<number> {
  return py<number>(`${PRELUDE}\nresult = ((y - y.mean(0)) ** 2).sum().item()`, { helper: HELPER, rows: fx.data.rows, model: fx.model.model });
}
