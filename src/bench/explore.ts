/**
 * The latent cache's cost against its parts: caching ~100k tokens of the bundled model's 4
 * hookpoints (SAEs of 4,096 latents, k=32) with `buildLatentCache`, against one model forward
 * plus the 4 coders' encode over the same tokens, timed alone in Python.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRuntime } from '../bridge/runtime.js';
import { benchOp } from '../bridge/ops.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { loadDataset } from '../data/dataset.js';
import { buildLatentCache, readLatentCache } from '../explore/latent-cache.js';
import { serveExplorer } from '../explore/server.js';
import { CHUNK, SiteData } from '../explore/site.js';
import { bundledDefault } from '../model/bundled.js';
import { loadModel, loadTokenizer } from '../model/language-model.js';

export async function benchExplore(tokens = Number(process.env.BENCH_EXPLORE_TOKENS ?? 100_000)): Promise<void> {
  const rt = await getRuntime();
  const work = mkdtempSync(join(tmpdir(), 'sparsify-bench-explore-'));
  try {
    const ctx = 128;
    const batch = Number(process.env.BENCH_EXPLORE_BATCH ?? 16);
    const rows = Math.ceil(tokens / ctx);
    const device = rt.info.cuda ? 'cuda' : 'cpu';
    const model = await loadModel(bundledDefault.model, { kind: 'causal_lm', device });
    const tokenizer = await loadTokenizer(bundledDefault.model);
    const text = await loadDataset(bundledDefault.dataset, { tokenizer, ctxLen: ctx });
    // The bundled text, repeated until there are enough rows, as a token file.
    const bin = join(work, 'tokens.bin');
    await benchOp('bench.repeat_tokens', { source: text.rows, num_rows: text.numRows, need: rows * ctx, bin });
    const data = await loadDataset(bin, { ctxLen: ctx });
    const hookpoints = ['layers.0', 'layers.1', 'layers.2', 'layers.3'];
    const coders = [];
    for (const [i, h] of hookpoints.entries()) coders.push({ name: h, hookpoint: h, coder: await SparseCoder.create(128, { k: 32, numLatents: 4096 }, { seed: i, device }) });
    await buildLatentCache(model, coders, data, join(work, 'warm'), { rows: [0, batch], batchSize: batch }); // compiles
    const t0 = performance.now();
    await buildLatentCache(model, coders, data, join(work, 'explore'), { rows: [0, rows], batchSize: batch, tokenizer });
    const cacheSeconds = (performance.now() - t0) / 1000;
    const parts = await benchOp('bench.explore_parts', { model: model.model, rows: data.rows, num_rows: rows, batch, device, hookpoints, params: coders.map((c) => c.coder.params) });
    const partsSeconds = parts.forward + parts.encode;
    const n = rows * ctx;
    console.log(`latent cache: bundled GPT-NeoX (hidden 128, 4 layers), ctx ${ctx}, batch ${batch}, ${n} tokens, SAEs on ${hookpoints.length} hookpoints (M=4096, k=32), ${device}`);
    console.log(`  buildLatentCache(): ${cacheSeconds.toFixed(2)} s (${Math.round(n / cacheSeconds)} tokens/s)`);
    console.log(`  its parts alone: forward ${parts.forward.toFixed(2)} s + ${hookpoints.length} encodes ${parts.encode.toFixed(2)} s = ${partsSeconds.toFixed(2)} s`);
    console.log(`  ratio cache / parts: ${(cacheSeconds / partsSeconds).toFixed(3)} (target < 1.5)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The explorer's pages for a 131,072-latent coder: a synthetic cache of that size (random
 * state, 100k tokens, a 50k vocabulary), timing the data files the server makes (the latent
 * table and one chunk of latent details) and, when Chromium is there, the pages in a browser.
 */
export async function benchExplorerPages(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'sparsify-bench-pages-'));
  try {
    const m = 131_072;
    const dir = join(work, 'explore');
    await benchOp('bench.synthetic_latent_cache', { d: dir, m });
    const site = new SiteData(await readLatentCache(dir), null);
    const timed = (f: () => string | undefined): [number, number] => {
      const t0 = performance.now();
      const text = f()!;
      return [performance.now() - t0, text.length];
    };
    const [tableMs, tableBytes] = timed(() => site.script('coders/0/table'));
    const [chunkMs, chunkBytes] = timed(() => site.script('coders/0/latents/2000'));
    console.log(`explorer pages, synthetic 131,072-latent coder (100k tokens, 50k vocab):`);
    console.log(`  server: latent table ${tableMs.toFixed(0)} ms (${(tableBytes / 1e6).toFixed(1)} MB, made once), latent chunk of ${CHUNK} ${chunkMs.toFixed(0)} ms (${(chunkBytes / 1e3).toFixed(0)} kB)`);
    if (!existsSync(process.env.SPARSIFY_CHROMIUM ?? '/usr/bin/chromium')) {
      console.log('  browser: no Chromium (set SPARSIFY_CHROMIUM) - skipped');
      return;
    }
    const server = await serveExplorer(site.cache, { runDir: null });
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: process.env.SPARSIFY_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    try {
      const page = await browser.newPage();
      const load = async (hash: string): Promise<number> => {
        const t0 = performance.now();
        await page.goto(`${server.url}${hash}`);
        await page.waitForSelector(`#app[data-ready="${hash}"]`, { timeout: 60_000 });
        return performance.now() - t0;
      };
      await load('#/'); // warm: overview and the app
      const tableFirst = await load('#/c/0');
      const tableAgain = await load('#/c/0?sort=max&desc=1&q=&dead=0&page=3');
      const latent = await load('#/c/0/l/77777');
      console.log(`  browser (page load to rendered): hookpoint table ${tableFirst.toFixed(0)} ms first, ${tableAgain.toFixed(0)} ms re-sorted; latent page ${latent.toFixed(0)} ms`);
    } finally {
      await browser.close();
      await server.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
