/**
 * Training from an activation cache: on the CPU bench model (GPT-NeoX hidden 256, 4 layers, ctx
 * 128, SAEs on all 4 layers, batch 8), the cache's write throughput, one epoch from the cache
 * against one online, and the share of the cached epoch spent outside the coders' own compute
 * (reading, converting and moving shards).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRuntime } from '../bridge/runtime.js';
import { activationCacheStats, hookWidths } from '../bridge/ops.js';
import { openActivationCache, writeActivationCache } from '../activation-cache/index.js';
import { loadDataset } from '../data/dataset.js';
import { loadModel } from '../model/language-model.js';
import { Trainer } from '../trainer/trainer.js';
import { makeBenchModel } from './fixture.js';

export async function benchCache(rows = Number(process.env.BENCH_CACHE_ROWS ?? 160)): Promise<void> {
  const rt = await getRuntime();
  const work = mkdtempSync(join(tmpdir(), 'sparsify-bench-cache-'));
  try {
    const [ctx, batch] = [128, 8];
    const { modelDir, bin } = await makeBenchModel(work, ctx, rows);
    const device = rt.info.cuda ? 'cuda' : 'cpu';
    const model = await loadModel(modelDir, { kind: 'base', device });
    const data = await loadDataset(bin, { ctxLen: ctx });
    const hookpoints = ['layers.0', 'layers.1', 'layers.2', 'layers.3'];
    const widths = await hookWidths(model.model, hookpoints);
    const dir = join(work, 'acts');
    const plan = {
      model: modelDir,
      dataset: bin,
      split: 'train',
      ctxLen: ctx,
      shuffleSeed: 0,
      rows,
      dtype: 'float32' as const,
      transcode: false,
      hookpoints: Object.fromEntries(hookpoints.map((h) => [h, { output: widths[h]!.output, input: null }])),
      rowsPerShard: 32,
    };
    await writeActivationCache(model, data, join(work, 'warm-acts'), { ...plan, rows: batch }, { batchSize: batch }); // compiles
    const t0 = performance.now();
    const index = await writeActivationCache(model, data, dir, plan, { batchSize: batch });
    const writeSeconds = (performance.now() - t0) / 1000;
    const bytes = index.shards.reduce((n, s) => n + s.bytes, 0);
    const cfg = { batchSize: batch, saveEvery: 1_000_000, logToWandb: false, saveDir: work };
    // Warm-up (compiles the programs), then one epoch each way.
    await new Trainer({ ...cfg, runName: 'warm' }, { ...data, numRows: 2 * batch }, model, { log: () => undefined }).fit();
    const t1 = performance.now();
    await new Trainer({ ...cfg, runName: 'online' }, data, model, { log: () => undefined }).fit();
    const online = (performance.now() - t1) / 1000;
    const cache = await openActivationCache(dir, { device });
    const t2 = performance.now();
    await new Trainer({ ...cfg, runName: 'cached' }, cache.dataset, cache.source, { log: () => undefined }).fit();
    const cached = (performance.now() - t2) / 1000;
    const reading = (await activationCacheStats(cache.source.model)).seconds;
    const tokens = rows * ctx;
    console.log(`activation cache: GPT-NeoX hidden 256 x 4 layers, ctx ${ctx}, ${rows} rows (${tokens} tokens), 4 hookpoints, float32, SAEs M=8192 k=32, batch ${batch}, ${device}`);
    console.log(`  write: ${writeSeconds.toFixed(2)} s, ${Math.round(tokens / writeSeconds)} tokens/s, ${(bytes / 2 ** 20 / writeSeconds).toFixed(1)} MB/s (${(bytes / 2 ** 20).toFixed(0)} MiB)`);
    console.log(`  one epoch: online ${online.toFixed(2)} s, from the cache ${cached.toFixed(2)} s (ratio ${(cached / online).toFixed(2)})`);
    console.log(`  from the cache, reading + converting + moving shards: ${reading.toFixed(2)} s = ${((reading / cached) * 100).toFixed(1)}% of the epoch (target < 10%)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
