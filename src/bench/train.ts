/**
 * Training throughput on a fixed CPU fixture: GPT-NeoX (hidden 256, 4 layers, random
 * weights), ctx 128, batch 8, SAEs on all layers (default config), and the share of step
 * time spent outside Python compute (bridge, TS bookkeeping).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRuntime } from '../bridge/runtime.js';
import { loadDataset } from '../data/dataset.js';
import { loadModel } from '../model/language-model.js';
import { Trainer } from '../trainer/trainer.js';
import { fvuByHookpoint, meanOfLast, referencePath, trainReference } from './reference.js';
import { makeBenchModel } from './fixture.js';

export async function benchTraining(steps = Number(process.env.BENCH_TRAIN_STEPS ?? 20)): Promise<void> {
  const rt = await getRuntime();
  const work = mkdtempSync(join(tmpdir(), 'sparsify-bench-'));
  try {
    const warmup = 3;
    const batch = 8;
    const ctx = 128;
    const { modelDir, bin } = await makeBenchModel(work, ctx, (steps + warmup) * batch);
    const model = await loadModel(modelDir, { kind: 'base', device: rt.info.cuda ? 'cuda' : 'cpu' });
    const data = await loadDataset(bin, { ctxLen: ctx });
    const fvus: Record<string, number>[] = [];
    let computeSeconds = 0;
    let t0 = 0;
    let t1 = 0;
    let calls0 = 0;
    let calls1 = 0;
    const total = warmup + steps;
    const trainer = new Trainer({ batchSize: batch, optimizer: 'signum', saveEvery: 1_000_000, logToWandb: false, saveDir: work, runName: 'bench' }, data, model, {
      log: () => undefined,
      onStep: (r) => {
        fvus.push(fvuByHookpoint(r));
        // Python compute time, from the runtime's own clock in each step's reply.
        if (t0 > 0 && t1 === 0) computeSeconds += r.computeSeconds;
        if (r.step === warmup) {
          t0 = performance.now();
          calls0 = rt.calls;
        }
        if (r.step === total) {
          t1 = performance.now();
          calls1 = rt.calls;
        }
      },
    });
    await trainer.fit();
    const wall = (t1 - t0) / 1000;
    const tokens = steps * batch * ctx;
    console.log(`training: GPT-NeoX hidden 256 x 4 layers, ctx ${ctx}, batch ${batch}, SAEs on all 4 layers (M=8192, k=32), ${rt.info.cuda ? 'cuda' : 'cpu'}, ${steps} steps after ${warmup} warm-up`);
    console.log(`  ${Math.round(tokens / wall)} tokens/s (${((wall / steps) * 1000).toFixed(0)} ms per step)`);
    console.log(`  bridge round trips per optimizer step: ${((calls1 - calls0) / steps).toFixed(2)}`);
    console.log(`  share of step time outside Python compute: ${(((wall - computeSeconds) / wall) * 100).toFixed(2)}% (target < 5%)`);
    // The CPU regression guard: not slower than the reference on the same fixture.
    if (referencePath()) {
      const fvuSteps = 5;
      const ref = await trainReference({ modelDir, bin, ctx, batch, warmup, steps, expansion: 32, k: 32, fvuSteps, out: join(work, 'reference.json') });
      const ours = tokens / wall;
      const fvu = meanOfLast(fvus, fvuSteps);
      const worst = Math.max(...Object.keys(ref.fvu).map((h) => Math.abs(fvu[h]! - ref.fvu[h]!) / ref.fvu[h]!));
      console.log(
        `  reference on the same fixture: ${Math.round(ref.tokens_per_second)} tokens/s; time ratio project/reference ${(ref.tokens_per_second / ours).toFixed(3)} (target <= 1.00); fvu largest relative difference ${(worst * 100).toFixed(3)}%`,
      );
    } else {
      console.log('  (no reference here: set SPARSIFY_REFERENCE_PATH to compare with it)');
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
