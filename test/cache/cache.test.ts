// Activation caches: the files against the size estimate; training from a cache gives coders
// bit-identical to the online run (SAEs, a sweep, transcoders); epochs and resume in the middle
// of a cached epoch; an interrupted cache finishes where it stopped; and the bad inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer } from '../../src/trainer/index.js';
import { SparseCoder } from '../../src/coder/index.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { hookWidths } from '../../src/bridge/ops.js';
import { estimateBytes, openActivationCache, readCacheIndex, writeActivationCache, type CachePlan } from '../../src/activation-cache/index.js';
import type { TrainConfigInput } from '../../src/config/index.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { maxAbsDiff } from '../helpers/python.js';

let work: string;
let fx: Fixture;
const HOOKS = ['layers.0', 'layers.1', 'layers.1.mlp'];
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-cache-'));
  fx = await tinyFixture(work, { rows: 40, ctxLen: 16 });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

async function plan(transcode: boolean, rowsPerShard = 7, dtype: CachePlan['dtype'] = 'float32'): Promise<CachePlan> {
  const widths = await hookWidths(fx.model.model, HOOKS);
  return {
    model: fx.modelDir,
    dataset: 'corpus',
    split: 'train',
    ctxLen: 16,
    shuffleSeed: 42,
    rows: 40,
    dtype,
    transcode,
    hookpoints: Object.fromEntries(HOOKS.map((h) => [h, { output: widths[h]!.output, input: transcode ? widths[h]!.input : null }])),
    rowsPerShard,
  };
}

const base: TrainConfigInput = { sae: { k: 4, expansionFactor: 2 }, batchSize: 6, logToWandb: false, hookpoints: ['layers.0', 'layers.1.mlp'] };

async function coders(dir: string): Promise<Map<string, SparseCoder>> {
  return SparseCoder.loadMany(dir);
}
async function sameCoders(a: string, b: string): Promise<void> {
  const [x, y] = [await coders(a), await coders(b)];
  expect([...x.keys()]).toEqual([...y.keys()]);
  expect(x.size).toBeGreaterThan(0);
  for (const [name, c] of x) {
    for (const p of ['encoder.weight', 'encoder.bias', 'W_dec', 'b_dec']) expect([name, p, await maxAbsDiff(await c.parameter(p), await y.get(name)!.parameter(p))]).toEqual([name, p, 0]);
  }
}

describe('activation cache', () => {
  it('writes shards whose sizes the estimate gives exactly, and an index that checks out', async () => {
    const p = await plan(false);
    const dir = join(work, 'acts');
    const index = await writeActivationCache(fx.model, fx.data, dir, p, { batchSize: 3 });
    expect(index.complete).toBe(true);
    expect(index.shards.map((s) => [s.start, s.end])).toEqual([[0, 7], [7, 14], [14, 21], [21, 28], [28, 35], [35, 40]]);
    const written = readdirSync(dir).filter((f) => f.endsWith('.safetensors')).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    expect(estimateBytes(index)).toBe(written);
    expect(readCacheIndex(dir).tokens).toBe(640);
  });

  for (const [label, cfg, transcode] of [
    ['SAEs', {}, false],
    ['a 2-configuration sweep', { sweep: ['k=4,8'] }, false],
    ['transcoders', { sae: { k: 4, expansionFactor: 2, transcode: true }, hookpoints: ['layers.1.mlp'] }, true],
  ] as [string, TrainConfigInput, boolean][]) {
    it(`training from the cache gives the online run's coders bit for bit: ${label}`, async () => {
      const dir = join(work, `acts-${transcode ? 'tc' : 'sae'}`);
      if (!existsSync(join(dir, 'index.json'))) await writeActivationCache(fx.model, fx.data, dir, await plan(transcode), { batchSize: 4 });
      const name = label.replace(/\W+/g, '-');
      await new Trainer({ ...base, ...cfg, saveDir: work, runName: `online-${name}` }, fx.data, fx.model, { log: () => undefined }).fit();
      const cache = await openActivationCache(dir);
      await new Trainer({ ...base, ...cfg, saveDir: work, runName: `cached-${name}` }, cache.dataset, cache.source, { log: () => undefined }).fit();
      await sameCoders(join(work, `online-${name}`), join(work, `cached-${name}`));
    }, 120_000);
  }

  it('epochs: each after the first in a new seeded order; resuming in the middle of one reproduces the whole run', async () => {
    const cache = await openActivationCache(join(work, 'acts'));
    const cfg: TrainConfigInput = { ...base, epochs: 3, saveEvery: 4, saveDir: work };
    const whole = new Trainer({ ...cfg, runName: 'epochs' }, cache.dataset, cache.source, { log: () => undefined });
    expect(whole.totalSteps).toBe(21); // 7 batches of 6 rows (the last short) per epoch
    await whole.fit();
    let steps = 0;
    const half = new Trainer({ ...cfg, runName: 'epochs-resumed' }, cache.dataset, cache.source, {
      log: () => undefined,
      onStep: () => {
        if (++steps === 10) half.requestStop(); // in the second epoch
      },
    });
    await half.fit();
    const rest = new Trainer({ ...cfg, runName: 'epochs-resumed' }, cache.dataset, cache.source, { log: () => undefined });
    await rest.loadState();
    expect(rest.globalStep).toBe(10);
    await rest.fit();
    await sameCoders(join(work, 'epochs'), join(work, 'epochs-resumed'));
    // Online, three epochs of the same rows make the same coders as from the cache.
    await new Trainer({ ...cfg, runName: 'epochs-online' }, { ...fx.data, numRows: 40 }, fx.model, { log: () => undefined }).fit();
    await sameCoders(join(work, 'epochs'), join(work, 'epochs-online'));
  }, 180_000);

  it('an interrupted cache finishes where it stopped, the same as one written at once', async () => {
    const p = await plan(false, 7, 'bfloat16');
    const dir = join(work, 'acts-interrupted');
    await expect(
      writeActivationCache(fx.model, fx.data, dir, p, {
        onShard: (done) => {
          if (done === 3) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    expect(() => readCacheIndex(dir)).toThrow(`${dir} is an unfinished activation cache (3 of 6 shards written); run the same \`sparsify cache\` command again to finish it`);
    // A half-written temporary file of the killed save, and a torn fourth shard.
    writeFileSync(join(dir, 'shard-00003.safetensors.tmp-99999'), 'partial');
    writeFileSync(join(dir, 'shard-00003.safetensors'), 'torn');
    const logs: string[] = [];
    await writeActivationCache(fx.model, fx.data, dir, p, { log: (m) => logs.push(m) });
    expect(logs).toContain(`Resuming the cache in ${dir} after 3 whole shard(s)`);
    const once = join(work, 'acts-once');
    await writeActivationCache(fx.model, fx.data, once, p);
    const [a, b] = [readCacheIndex(dir), readCacheIndex(once)];
    expect(a.shards.map((s) => s.sha256)).toEqual(b.shards.map((s) => s.sha256));
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    // A complete cache is not written over.
    await expect(writeActivationCache(fx.model, fx.data, once, p)).rejects.toThrow(/already holds a complete activation cache; train from it with --from_cache/);
  }, 120_000);

  it('bad input: not a cache, a truncated or altered shard, other hookpoints, a transcoder from outputs only, no disk space', async () => {
    mkdirSync(join(work, 'empty'));
    await expect(openActivationCache(join(work, 'empty'))).rejects.toThrow(/is not an activation cache \(no index.json\); write one with `sparsify cache`/);
    // Copies of a complete cache, then damaged.
    const copy = (to: string): string => {
      const dir = join(work, to);
      mkdirSync(dir);
      for (const f of readdirSync(join(work, 'acts'))) writeFileSync(join(dir, f), readFileSync(join(work, 'acts', f)));
      return dir;
    };
    const truncated = copy('truncated');
    truncateSync(join(truncated, 'shard-00002.safetensors'), 1000);
    await expect(openActivationCache(truncated)).rejects.toThrow(/shard shard-00002.safetensors is truncated \(1000 of \d+ bytes\); write the cache again/);
    const altered = copy('altered');
    const fd = openSync(join(altered, 'shard-00004.safetensors'), 'r+');
    writeSync(fd, Buffer.from([1, 2, 3, 4]), 0, 4, 5000);
    closeSync(fd);
    await expect(openActivationCache(altered)).rejects.toThrow(/shard shard-00004.safetensors does not match the cache's index \(sha256 differs\)/);
    const cache = await openActivationCache(join(work, 'acts'));
    const other = new Trainer({ ...base, hookpoints: ['layers.2*'], saveDir: work, runName: 'other' }, cache.dataset, cache.source, { log: () => undefined });
    await expect(other.fit()).rejects.toThrow("hookpoint pattern 'layers.2*' matches none of the cache's hookpoints (it holds layers.0, layers.1, layers.1.mlp)");
    const tc = new Trainer({ ...base, sae: { k: 4, transcode: true }, hookpoints: ['layers.1.mlp'], saveDir: work, runName: 'tc' }, cache.dataset, cache.source, { log: () => undefined });
    await expect(tc.fit()).rejects.toThrow("hookpoint 'layers.1.mlp': the cache holds its outputs only; a transcoder needs its inputs too (write the cache with --transcode)");
    const huge = { ...(await plan(false)), rows: 10 ** 12 };
    await expect(writeActivationCache(fx.model, fx.data, join(work, 'huge'), huge)).rejects.toThrow(/^the cache needs .* GiB more but .* has .* free; free some space, lower --max_tokens, or use --dtype bfloat16$/);
    expect(readdirSync(join(work, 'huge')).filter((f) => f.endsWith('.safetensors'))).toEqual([]);
  }, 120_000);
});
