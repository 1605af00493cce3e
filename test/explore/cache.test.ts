// The latent cache against a plain PyTorch restatement (test/helpers/reference_explore.py):
// counts, maxima, histograms, top examples and their windows exactly; logit effects and
// neighbours against W_dec @ W_U and cosine similarity; and what a reader is told when the
// cache is missing, half-built or built for other coders.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SparseCoder } from '../../src/coder/index.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { buildLatentCache, readLatentCache, type LatentCache } from '../../src/explore/index.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { py } from '../helpers/python.js';
import { loadTokenizer } from '../../src/model/index.js';
import { loadDataset } from '../../src/data/index.js';

interface Restated {
  dense: Record<string, { count: number[]; sum: number[]; max: number[]; hist_range: number[]; hist: number[][]; top: { token: number; activation: number; window: number[] }[][] }>;
  logits: Record<string, { top_id: number[][]; top_value: number[][]; bottom_id: number[][]; bottom_value: number[][] }>;
  neighbours: Record<string, { id: number[][]; similarity: number[][] }>;
  tokens: number;
}

let work: string;
let fx: Fixture;
const coders: { name: string; hookpoint: string; coder: SparseCoder; path: string }[] = [];
const ROWS: [number, number] = [4, 28];
const EXCLUDE = [0];
let cache: LatentCache;
let want: Restated;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-explore-'));
  fx = await tinyFixture(work, { rows: 32, ctxLen: 16, kind: 'causal_lm' });
  const specs = [
    { hookpoint: 'layers.0', cfg: { k: 4, numLatents: 64 } },
    { hookpoint: 'layers.1', cfg: { k: 4, numLatents: 64, activation: 'groupmax' as const } },
  ];
  for (const [i, s] of specs.entries()) {
    const coder = await SparseCoder.create(32, s.cfg, { seed: i + 1 });
    const path = join(work, 'coders', s.hookpoint);
    await coder.saveToDisk(path);
    coders.push({ name: s.hookpoint, hookpoint: s.hookpoint, coder, path });
  }
  const tokenizer = await loadTokenizer(fx.modelDir);
  // Batches of 5 rows: the last one is short.
  await buildLatentCache(fx.model, coders, fx.data, join(work, 'coders', 'explore'), { rows: ROWS, batchSize: 5, excludeTokens: EXCLUDE, tokenizer, chunk: 24 });
  cache = await readLatentCache(join(work, 'coders', 'explore'));
  const spec = Object.fromEntries(coders.map((c) => [c.name, [c.hookpoint, c.coder.params, c.coder.cfg.k, c.coder.cfg.activation, c.coder.cfg.transcode]]));
  want = await py<Restated>(
    `
import importlib.util
s = importlib.util.spec_from_file_location("reference_explore", helper); mod = importlib.util.module_from_spec(s); s.loader.exec_module(mod)
cs = {n: (hp, {k: v.detach() for k, v in p.items()}, k, act, tc) for n, (hp, p, k, act, tc) in spec.items()}
ids = rows.rows(a, b)
dense = mod.dense_activations(model, ids, cs, batch_size=5, exclude=exclude)
w_u = model.get_output_embeddings().weight.detach()
result = {
  "dense": {n: mod.latent_stats(d, ids.shape[1], a * ids.shape[1]) for n, d in dense.items()},
  "logits": {n: mod.logit_effects(cs[n][1]["W_dec"], w_u) for n in cs},
  "neighbours": {n: mod.neighbours(cs[n][1]["W_dec"]) for n in cs},
  "tokens": int((~torch.isin(ids, torch.tensor(exclude))).sum()),
}`,
    { helper: new URL('../helpers/reference_explore.py', import.meta.url).pathname, model: fx.model.model, rows: fx.data.rows, a: ROWS[0], b: ROWS[1], spec, exclude: EXCLUDE },
  );
}, 240_000);

afterAll(() => {
  cache?.close();
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

const close = (got: number, want: number, tol = 1e-5): boolean => Math.abs(got - want) <= tol * Math.max(1, Math.abs(want));

describe('latent cache', () => {
  it('counts, maxima, means and histograms match the restatement exactly', () => {
    for (const { name } of coders) {
      const w = want.dense[name]!;
      const table = cache.table(name);
      expect(cache.tokens(name)).toBe(want.tokens);
      expect(Array.from(table.count)).toEqual(w.count);
      expect(Array.from(table.max)).toEqual(w.max.map(Math.fround));
      expect(w.count.some((c) => c > 20)).toBe(true); // some latents overflow the top 20
      for (let id = 0; id < w.count.length; id++) {
        const rec = cache.latent(name, id);
        expect(rec.count).toBe(w.count[id]);
        expect(close(rec.mean, w.count[id]! > 0 ? w.sum[id]! / w.count[id]! : 0)).toBe(true);
        expect(rec.frequency).toBeCloseTo(w.count[id]! / want.tokens, 12);
        expect(rec.histogram.range).toBe(w.hist_range[id]);
        expect(rec.histogram.counts).toEqual(w.hist[id]);
      }
    }
  });

  it('top examples: positions, activations and windows match exactly', () => {
    const vocab = cache.vocab();
    for (const { name } of coders) {
      const w = want.dense[name]!;
      for (let id = 0; id < w.count.length; id++) {
        const rec = cache.latent(name, id);
        expect(rec.top.map((e) => e.token)).toEqual(w.top[id]!.map((e) => e.token));
        expect(rec.top.map((e) => e.activation)).toEqual(w.top[id]!.map((e) => Math.fround(e.activation)));
        rec.top.forEach((e, i) => {
          expect(e.windowActs).toEqual(w.top[id]![i]!.window.map(Math.fround));
          expect(e.row).toBe(Math.floor(e.token / 16));
          expect(e.position).toBe(e.token % 16);
          // The centre token is the example's own token; outside the row, -1.
          expect(e.windowTokens[16]).toBe(cache.rowTokens(e.row)[e.position]);
          e.windowTokens.forEach((t, j) => expect(t === -1).toBe(e.position - 16 + j < 0 || e.position - 16 + j >= 16));
        });
        expect(vocab.length).toBe(cache.index.vocab_size);
      }
    }
  });

  it('interval samples are real firings of their interval', () => {
    for (const { name } of coders) {
      const w = want.dense[name]!;
      for (let id = 0; id < w.count.length; id++) {
        const rec = cache.latent(name, id);
        const firings = rec.intervals.flatMap((iv) => iv.examples);
        expect(firings.length).toBeLessThanOrEqual(50);
        if (w.count[id]! > 0) expect(firings.length).toBeGreaterThan(0);
        for (const iv of rec.intervals) {
          expect(iv.examples.length).toBeLessThanOrEqual(5);
          for (const e of iv.examples) {
            expect(e.activation).toBeGreaterThan(0);
            expect(e.activation >= iv.lo - 1e-6 && e.activation <= iv.hi + 1e-6).toBe(true);
            expect(e.windowActs[16]).toBe(e.activation);
          }
        }
      }
    }
  });

  it('logit effects are W_dec @ W_U, neighbours by decoder cosine similarity', () => {
    for (const { name } of coders) {
      const l = want.logits[name]!;
      const n = want.neighbours[name]!;
      for (let id = 0; id < 64; id++) {
        const rec = cache.latent(name, id);
        expect(rec.logits!.top.map((t) => t.token)).toEqual(l.top_id[id]);
        expect(rec.logits!.bottom.map((t) => t.token)).toEqual(l.bottom_id[id]);
        rec.logits!.top.forEach((t, i) => expect(close(t.value, l.top_value[id]![i]!, 1e-4)).toBe(true));
        rec.logits!.bottom.forEach((t, i) => expect(close(t.value, l.bottom_value[id]![i]!, 1e-4)).toBe(true));
        expect(rec.neighbours.map((x) => x.id)).toEqual(n.id[id]);
        rec.neighbours.forEach((x, i) => expect(close(x.similarity, n.similarity[id]![i]!, 1e-4)).toBe(true));
        expect(rec.neighbours.some((x) => x.id === id)).toBe(false);
      }
    }
  });

  it('ties (the same text twice) keep token order, as a stable sort of everything seen', async () => {
    // Six rows, each four times over: every firing has equal twins in other batches and in
    // the same batch.
    const bin = join(work, 'tied.bin');
    await py('import numpy as np\nrows.rows(0, 6).repeat(4, 1).numpy().astype(np.uint16).tofile(bin)', { rows: fx.data.rows, bin });
    const tied = await loadDataset(bin, { ctxLen: 16 });
    const dir = join(work, 'tied', 'explore');
    const one = [coders[0]!];
    await buildLatentCache(fx.model, one, tied, dir, { rows: [0, 24], batchSize: 5 });
    const got = await readLatentCache(dir);
    const spec = { [one[0]!.name]: [one[0]!.hookpoint, one[0]!.coder.params, 4, 'topk', false] };
    const w = await py<Restated['dense']>(
      `
import importlib.util
s = importlib.util.spec_from_file_location("reference_explore", helper); mod = importlib.util.module_from_spec(s); s.loader.exec_module(mod)
cs = {n: (hp, {k: v.detach() for k, v in p.items()}, k, act, tc) for n, (hp, p, k, act, tc) in spec.items()}
ids = rows.rows(0, 24)
result = {n: mod.latent_stats(d, 16, 0) for n, d in mod.dense_activations(model, ids, cs, batch_size=5, exclude=[]).items()}`,
      { helper: new URL('../helpers/reference_explore.py', import.meta.url).pathname, model: fx.model.model, rows: tied.rows, spec },
    );
    let ties = 0;
    for (let id = 0; id < 64; id++) {
      const rec = got.latent('layers.0', id);
      const acts = rec.top.map((e) => e.activation);
      ties += acts.filter((a, i) => i > 0 && a === acts[i - 1]).length;
      expect(rec.top.map((e) => e.token)).toEqual(w['layers.0']!.top[id]!.map((e) => e.token));
    }
    expect(ties).toBeGreaterThan(100);
    got.close();
  });

  it('says when a latent id is out of range, a coder is unknown or the cache is missing', async () => {
    expect(() => cache.latent('layers.0', 64)).toThrow(/latent 64 is out of range: layers.0 has latents 0..63/);
    expect(() => cache.latent('layers.9', 0)).toThrow(/no coder 'layers.9'/);
    await expect(readLatentCache(join(work, 'nowhere'))).rejects.toThrow(/no latent cache here/);
  });

  it('is rebuilt only when whole: an interrupted pass leaves the old cache as it was', async () => {
    const dir = join(work, 'coders', 'explore');
    const before = cache.index.created;
    await expect(
      buildLatentCache(fx.model, coders, fx.data, dir, {
        rows: ROWS,
        batchSize: 5,
        onBatch: (done) => {
          if (done === 2) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    expect((await readLatentCache(dir)).index.created).toBe(before);
    expect(readdirSync(join(work, 'coders')).filter((f) => f.includes('building'))).toEqual([]);
  });

  it('refuses to load when its coders have changed since', async () => {
    const c = coders[0]!;
    await py('with torch.no_grad(): p["b_dec"].add_(1.0)', { p: c.coder.params });
    await c.coder.saveToDisk(c.path);
    await expect(readLatentCache(join(work, 'coders', 'explore'))).rejects.toThrow(/was built for other coders: layers.0 .* has changed since/);
    expect(existsSync(join(work, 'coders', 'explore', 'index.json'))).toBe(true);
  });
});
