// Sweeps: every configuration trained side by side from one model pass gives, bit for bit,
// the coder a separate run with that configuration gives; the configurations' names, the
// run's files, resume in the middle, distributed-modules units, and the bad inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer } from '../../src/trainer/index.js';
import { SparseCoder } from '../../src/coder/index.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { trainConfig, variantsOf, type TrainConfigInput } from '../../src/config/index.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { maxAbsDiff } from '../helpers/python.js';

let work: string;
let fx: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-sweep-'));
  fx = await tinyFixture(work, { rows: 48, ctxLen: 16 });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

const base: TrainConfigInput = { sae: { k: 4, expansionFactor: 2 }, batchSize: 8, hookpoints: ['layers.1'], logToWandb: false, saveDir: '' };
const run = (runName: string, cfg: TrainConfigInput): Trainer => new Trainer({ ...base, saveDir: work, runName, ...cfg }, fx.data, fx.model, { log: () => undefined });

/** Every parameter of two coders is equal, bit for bit. */
async function identical(a: SparseCoder, b: SparseCoder, what: string): Promise<void> {
  expect(a.cfg).toEqual(b.cfg);
  const names = ['encoder.weight', 'encoder.bias', 'W_dec', 'b_dec', ...(a.cfg.skipConnection ? ['W_skip'] : [])];
  for (const name of names) expect([what, name, await maxAbsDiff(await a.parameter(name), await b.parameter(name))]).toEqual([what, name, 0]);
}

describe('sweeps', () => {
  it('names the cross product, first key outermost', () => {
    const cfg = trainConfig({ sweep: ['k=16,32', 'expansion_factor=8,16'] });
    expect(variantsOf(cfg).map((v) => v.name)).toEqual(['k16-ef8', 'k16-ef16', 'k32-ef8', 'k32-ef16']);
    expect(variantsOf(trainConfig({ sweep: ['activation=topk,groupmax', 'lr=0.001,2e-3', 'multi_topk=true'] })).map((v) => v.name)).toEqual([
      'act-topk-lr0.001-mtk-true',
      'act-topk-lr0.002-mtk-true',
      'act-groupmax-lr0.001-mtk-true',
      'act-groupmax-lr0.002-mtk-true',
    ]);
    expect(variantsOf(trainConfig({})).map((v) => v.name)).toEqual(['']);
  });

  for (const [label, sweep, extra] of [
    ['k x activation', ['k=4,8', 'activation=topk,groupmax'], {}],
    ['optimizer x auxk_alpha x multi_topk (with dead latents)', ['optimizer=signum,adam', 'auxk_alpha=0,0.03'], { deadFeatureThreshold: 64, sae: { k: 4, expansionFactor: 2, multiTopk: true } }],
  ] as [string, string[], TrainConfigInput][]) {
    it(`each coder of a 4-configuration sweep (${label}) is bit-identical to a separate run's`, async () => {
      const name = `sweep-${label.replace(/\W+/g, '-')}`;
      const swept = run(name, { ...extra, sweep });
      await swept.fit();
      const variants = swept.variants;
      expect(variants).toHaveLength(4);
      const coders = await SparseCoder.loadMany(join(work, name));
      expect([...coders.keys()].sort()).toEqual(variants.map((v) => `layers.1/${v.name}`).sort());
      for (const v of variants) {
        const alone = run(`${name}-alone-${v.name}`, { ...extra, sae: v.sae, optimizer: v.optimizer, auxkAlpha: v.auxkAlpha, ...(v.lr !== undefined ? { lr: v.lr } : {}) });
        await alone.fit();
        await identical(coders.get(`layers.1/${v.name}`)!, (await SparseCoder.loadMany(join(work, `${name}-alone-${v.name}`))).get('layers.1')!, v.name);
        expect(JSON.parse(readFileSync(join(work, name, 'layers.1', v.name, 'cfg.json'), 'utf8'))).toEqual(JSON.parse(readFileSync(join(work, `${name}-alone-${v.name}`, 'layers.1', 'cfg.json'), 'utf8')));
      }
      // metrics.jsonl names each configuration.
      const first = JSON.parse(readFileSync(join(work, name, 'metrics.jsonl'), 'utf8').split('\n')[0]!) as Record<string, number>;
      for (const v of variants) expect(first[`fvu/layers.1/${v.name}`]).toBeGreaterThan(0);
    }, 180_000);
  }

  it('resuming in the middle of a sweep gives the coders of the uninterrupted one; several seeds nest below', async () => {
    const cfg: TrainConfigInput = { sweep: ['k=4,8'], initSeeds: [0, 1], saveEvery: 2 };
    await run('whole', cfg).fit();
    let steps = 0;
    const half = new Trainer({ ...base, saveDir: work, runName: 'halves', ...cfg }, fx.data, fx.model, {
      log: () => undefined,
      onStep: () => {
        steps += 1;
        if (steps === 3) half.requestStop();
      },
    });
    await half.fit();
    const resumed = run('halves', cfg);
    await resumed.loadState();
    await resumed.fit();
    const whole = await SparseCoder.loadMany(join(work, 'whole'));
    expect([...whole.keys()]).toEqual(['layers.1/k4/seed0', 'layers.1/k4/seed1', 'layers.1/k8/seed0', 'layers.1/k8/seed1']);
    const halves = await SparseCoder.loadMany(join(work, 'halves'));
    for (const [n, c] of whole) await identical(halves.get(n)!, c, n);
    expect(readdirSync(join(work, 'whole', 'layers.1')).sort()).toEqual(['k4', 'k8']);
  }, 180_000);

  it('a resume with another sweep is refused', async () => {
    const other = run('whole', { sweep: ['k=4,16'], initSeeds: [0, 1] });
    await expect(other.loadState()).rejects.toThrow(/cannot resume from .*whole: it swept "k=4,8", this run sweeps "k=4,16"; resume with the same --sweep, or start a new run/);
    other.close();
  });

  it('bad input: unknown, unsweepable, empty, repeated, identical configurations, a loss other than fvu', () => {
    const bad = (sweep: string[], more: TrainConfigInput = {}): string => {
      try {
        trainConfig({ ...more, sweep });
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(bad(['kk=1,2'])).toBe('train config: sweep: unknown setting "kk" (sweepable: k, expansion_factor, num_latents, activation, multi_topk, skip_connection, normalize_decoder, lr, optimizer, auxk_alpha, lr_warmup_steps, k_decay_steps, dead_feature_threshold, l0_coefficient, target_l0, matryoshka_prefixes)');
    expect(bad(['batch_size=8,16'])).toMatch(/^train config: sweep: batch_size cannot be swept: every configuration of a sweep shares it/);
    expect(bad(['k='])).toBe('train config: sweep: "k=" has an empty value; list values as k=a,b,c');
    expect(bad(['k16'])).toBe('train config: sweep: "k16" is not key=v1,v2,... (e.g. "k=16,32,64")');
    expect(bad(['k=16,16'])).toBe('train config: sweep: k lists 16 twice');
    expect(bad(['k=16', 'k=32'])).toBe('train config: sweep: k is given twice; list all its values once ("k=a,b,c")');
    expect(bad(['k=abc'])).toMatch(/^train config: sweep: k=abc: /);
    expect(bad(['optimizer=sgd'])).toMatch(/^train config: sweep: optimizer=sgd: /);
    expect(bad(['expansion_factor=8,16'], { sae: { numLatents: 4096 } })).toBe('train config: sweep: configurations ef8 and ef16 would train the same coder (a setting they differ in does not apply); sweep values that matter');
    expect(bad(['k=4,8'], { lossFn: 'ce' })).toMatch(/sweep: a sweep trains with loss_fn fvu only \(got ce\)/);
    expect(bad(['k=64,128'], { sae: { numLatents: 100 } })).toMatch(/k=128 is larger than num_latents=100 \(configuration k128\)/);
  });
});
