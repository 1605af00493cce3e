// The learned inference threshold (--inference_threshold): its update is dictionary_learning's
// update_threshold (BatchTopKTrainer's and TopKTrainer's, restated below from their source:
// the batch's smallest positive kept value, or the token average of each token's; the first
// value starts it, then theta <- beta * theta + (1 - beta) * value); a coder that has one
// encodes pre * (pre > theta) at inference; training moves it only after threshold_start_step
// steps and saves it in sae.safetensors; groupmax cannot have one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { asRows } from '../../src/activations/index.js';
import { sparseCoderConfig } from '../../src/config/sparse-coder.js';
import { trainConfig } from '../../src/config/train.js';
import { evaluate } from '../../src/eval/index.js';
import { In, defineProgram, runProgram } from '../../src/kernels/index.js';
import * as sc from '../../src/math/sparse-coder.js';
import type { CoderParamName, CoderStructure } from '../../src/math/structure.js';
import { Trainer } from '../../src/trainer/trainer.js';
import { py, randn } from '../helpers/python.js';
import { DL_HELPER } from '../helpers/dictionary-learning.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';

let work: string;
let fx: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-threshold-'));
  fx = await tinyFixture(work, { rows: 48, ctxLen: 16 });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

/** dictionary_learning's update_threshold of BatchTopKTrainer (f: the dense selection) and TopKTrainer (top_acts_BK), from the restatement. */
const UPDATE_THRESHOLD = `
import pathlib
dl = {}
exec(pathlib.Path(helper).read_text(), dl)

def dense(acts, idx, m):
    return torch.zeros(acts.shape[0], m).scatter_add_(1, idx, acts)
`;

/** One training forward and threshold step of a coder on x (the hook's math, without the model). */
function stepProgram(s: CoderStructure) {
  return defineProgram(
    `test_threshold_step_${s.activation}`,
    { params: In.bundle<CoderParamName>(), x: In.tensor(), k: In.scalar(), beta: In.scalar() },
    (g, { params, x, k, beta }) => {
      const out = sc.forward(g, params, x, x, undefined, k, s);
      sc.updateThreshold(g, params, out.kept, s, { beta, ddp: g.float(0).gt(1) });
      // In rows (batchtopk trains on a ragged selection), for the dense restatement.
      const kept = asRows(g, out.kept, x.size(0));
      return { acts: kept.values, indices: kept.indices, theta: params.get('threshold').clone() };
    },
  );
}

describe('learned inference threshold', () => {
  for (const act of ['batchtopk', 'topk'] as const) {
    it(`${act}: the first batch starts theta, the next moves it by beta, as dictionary_learning's update_threshold`, async () => {
      const coder = await SparseCoder.create(16, { activation: act, k: 3, numLatents: 48, inferenceThreshold: true }, { seed: 2 });
      expect(await coder.threshold()).toBeUndefined();
      const program = stepProgram(coder.structure);
      const got: number[] = [];
      let theta = -1;
      for (const seed of [11, 12, 13]) {
        const x = await randn([20, 16], seed);
        const r = await runProgram(program, { params: coder.params, x, k: 3, beta: 0.999 });
        const want = await py<number>(
          `${UPDATE_THRESHOLD}
theta = torch.tensor(theta0, dtype=torch.float32)
if "${act}" == "batchtopk":
    result = float(dl["batch_topk_update_threshold"](theta, dense(acts, idx, 48), 0.999))
else:
    result = float(dl["topk_update_threshold"](theta, acts, 0.999))`,
          { acts: r.acts, idx: r.indices, theta0: theta, helper: DL_HELPER },
        );
        theta = await r.theta.item();
        expect(Math.abs(theta - want) / Math.abs(want)).toBeLessThan(1e-6);
        got.push(theta);
      }
      expect(got[0]).toBeGreaterThan(0);
      // After the first value, each batch moves theta by a thousandth of the way.
      expect(Math.abs(got[2]! - got[1]!)).toBeLessThan(Math.abs(got[1]! - got[0]!) * 10);
      expect(await coder.threshold()).toBeCloseTo(got[2]!, 6);
    });
  }

  it('batchtopk: a batch that keeps nothing (no positive pre-activation) gives 0, as dictionary_learning\'s', async () => {
    const coder = await SparseCoder.create(16, { activation: 'batchtopk', k: 3, numLatents: 48, inferenceThreshold: true }, { seed: 2 });
    await py('with torch.no_grad(): p["encoder.bias"].fill_(-1e3)', { p: coder.params });
    const r = await runProgram(stepProgram(coder.structure), { params: coder.params, x: await randn([20, 16], 11), k: 3, beta: 0.999 });
    expect(await py<number>('result = int((acts > 0).sum())', { acts: r.acts })).toBe(0);
    expect(await r.theta.item()).toBe(0);
  });

  it('a coder with a learned threshold encodes pre * (pre > theta), each token on its own; mode topk gives its own selection', async () => {
    const coder = await SparseCoder.create(16, { activation: 'batchtopk', k: 3, numLatents: 48 }, { seed: 4 });
    expect(coder.cfg.inferenceThreshold).toBe(true); // batchtopk's default
    const x = await randn([30, 16], 21);
    // Never learned: encode falls back to the batch selection; asking for the threshold is an error.
    const before = await coder.encode(x);
    expect(await py<number>('result = int((a > 0).sum())', { a: before.topActs })).toBe(90);
    await expect(coder.encode(x, { mode: 'threshold' })).rejects.toThrow("encode mode 'threshold': this coder's threshold was never learned");
    await py('with torch.no_grad(): p["threshold"].fill_(0.05)', { p: coder.params });
    const byThreshold = await coder.encode(x);
    const r = await py<{ equal: boolean; rowsDiffer: boolean }>(
      `got = torch.zeros_like(pre).scatter_add_(1, idx, acts)
want = pre * (pre > 0.05)
counts = (got > 0).sum(1)
result = {"equal": bool(torch.equal(got, want)), "rowsDiffer": bool(counts.min() != counts.max())}`,
      { pre: byThreshold.preActs, idx: byThreshold.topIndices, acts: byThreshold.topActs },
    );
    expect(r).toEqual({ equal: true, rowsDiffer: true });
    // The same token encodes the same alone as in a batch (the batch selection cannot promise that).
    const alone = await coder.encode(await py('result = x[:1].clone()', { x }));
    expect(await py<boolean>('result = torch.allclose(torch.zeros(1, 48).scatter_add_(1, i, a), torch.zeros(30, 48).scatter_add_(1, bi, ba)[:1], atol=1e-6)', { i: alone.topIndices, a: alone.topActs, bi: byThreshold.topIndices, ba: byThreshold.topActs })).toBe(true);
    const own = await coder.encode(x, { mode: 'topk' });
    expect(await py<boolean>('result = torch.equal(torch.zeros_like(p).scatter_add_(1, i, a), torch.zeros_like(p).scatter_add_(1, j, b))', { p: before.preActs, i: own.topIndices, a: own.topActs, j: before.topIndices, b: before.topActs })).toBe(true);
    // A topk coder learns none unless asked.
    const plain = await SparseCoder.create(16, { k: 3, numLatents: 48 }, { seed: 4 });
    expect(plain.cfg.inferenceThreshold).toBe(false);
    await expect(plain.encode(x, { mode: 'threshold' })).rejects.toThrow("encode mode 'threshold': this topk coder has no inference threshold (train it with --inference_threshold)");
  });

  it('groupmax cannot learn one: one line naming it', () => {
    expect(() => sparseCoderConfig({ activation: 'groupmax', inferenceThreshold: true })).toThrow(
      'sparse coder config: inference_threshold: groupmax does not learn an inference threshold (topk and batchtopk do)',
    );
    expect(() => trainConfig({ sae: { activation: 'groupmax', inferenceThreshold: true } })).toThrow(/inference_threshold: groupmax does not learn an inference threshold/);
    expect(() => trainConfig({ sae: { inferenceThreshold: true }, sweep: ['activation=topk,groupmax'] })).toThrow(/groupmax does not learn an inference threshold \(topk and batchtopk do\) \(configuration act-groupmax\)/);
  });

  it('training moves it only after threshold_start_step steps, saves it in sae.safetensors and cfg.json, and eval encodes by it', async () => {
    const base = { lr: 0.01, batchSize: 4, logToWandb: false, saveDir: work, saveEvery: 1000, hookpoints: ['layers.0'] };
    const quiet = { log: () => undefined };
    await new Trainer({ ...base, sae: { activation: 'batchtopk' as const, k: 4, numLatents: 64 }, runName: 'late' }, fx.data, fx.model, quiet).fit();
    const late = (await SparseCoder.loadMany(join(work, 'late'))).get('layers.0')!;
    expect(await late.threshold()).toBeUndefined(); // 12 steps, before the default start (1000)
    await new Trainer({ ...base, sae: { activation: 'batchtopk' as const, k: 4, numLatents: 64 }, thresholdStartStep: 2, thresholdBeta: 0.5, runName: 'early' }, fx.data, fx.model, quiet).fit();
    const dir = join(work, 'early', 'layers.0');
    expect(JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8')).inference_threshold).toBe(true);
    const stored = await py<{ shape: number[]; dtype: string; value: number }>(
      'from safetensors import safe_open\nwith safe_open(path, "pt") as f:\n  t = f.get_tensor("threshold")\nresult = {"shape": list(t.shape), "dtype": str(t.dtype), "value": float(t)}',
      { path: join(dir, 'sae.safetensors') },
    );
    expect(stored.shape).toEqual([]);
    expect(stored.dtype).toBe('torch.float32');
    expect(stored.value).toBeGreaterThan(0);
    const coder = await SparseCoder.loadFromDisk(dir);
    expect(await coder.threshold()).toBe(stored.value);
    // Eval measures the L0 the threshold gives, no longer exactly k.
    const report = await evaluate(fx.model, new Map([['layers.0', coder]]), fx.data, { rows: [0, 16], splice: 'none' });
    const l0 = report.coders['layers.0']!.l0;
    expect(l0).toBeGreaterThan(0);
    expect(Math.abs(l0 - 4)).toBeGreaterThan(1e-3);
    // --encode_mode: threshold is what auto did; topk, the batch's own selection, gives k again.
    const byThreshold = await evaluate(fx.model, new Map([['layers.0', coder]]), fx.data, { rows: [0, 16], splice: 'none', encodeMode: 'threshold' });
    expect(byThreshold.coders['layers.0']!.l0).toBe(l0);
    const own = await evaluate(fx.model, new Map([['layers.0', coder]]), fx.data, { rows: [0, 16], splice: 'none', encodeMode: 'topk' });
    expect(own.coders['layers.0']!.l0).toBeCloseTo(4, 5);
  }, 120_000);
});
