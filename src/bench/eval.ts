/**
 * Evaluation's cost against its parts, on the training fixture (GPT-NeoX hidden 256, 4
 * layers, ctx 128, SAEs with 8,192 latents on every layer): `evaluate()` with --splice each
 * against, timed alone in Python over the same tokens, the forwards it needs (one clean, one
 * spliced and one zero-ablated per hookpoint: 2H+1) plus one coder forward per hookpoint.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRuntime } from '../bridge/runtime.js';
import { benchOp } from '../bridge/ops.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { loadDataset } from '../data/dataset.js';
import { evaluate } from '../eval/index.js';
import { loadModel } from '../model/language-model.js';
import { makeBenchModel } from './fixture.js';

export async function benchEval(batches = Number(process.env.BENCH_EVAL_BATCHES ?? 8)): Promise<void> {
  const rt = await getRuntime();
  const work = mkdtempSync(join(tmpdir(), 'sparsify-bench-eval-'));
  try {
    const [batch, ctx, layers] = [8, 128, 4];
    const { modelDir, bin } = await makeBenchModel(work, ctx, (batches + 1) * batch, { layers, lowestToken: 1 });
    const device = rt.info.cuda ? 'cuda' : 'cpu';
    const model = await loadModel(modelDir, { kind: 'causal_lm', device });
    const data = await loadDataset(bin, { ctxLen: ctx });
    const coders = new Map<string, SparseCoder>();
    for (let i = 0; i < layers; i++) coders.set(`layers.${i}`, await SparseCoder.create(256, { k: 32, numLatents: 8192 }, { seed: i, device }));
    const rows = [batch, (batches + 1) * batch] as const;
    await evaluate(model, coders, data, { rows: [0, batch], batchSize: batch }); // warm-up (compiles)
    const t0 = performance.now();
    await evaluate(model, coders, data, { rows, batchSize: batch });
    const evalSeconds = (performance.now() - t0) / 1000;
    const parts = await benchOp('bench.eval_parts', {
      model: model.model,
      rows: data.rows,
      start: rows[0],
      end: rows[1],
      batch,
      device,
      hookpoints: [...coders.keys()],
      params: [...coders.values()].map((c) => c.params),
    });
    const h = layers;
    const partsSeconds = parts.forward + parts.coder;
    const perForward = parts.forward / (2 * h + 1);
    const tokens = (rows[1] - rows[0]) * ctx;
    console.log(`evaluation: GPT-NeoX hidden 256 x ${layers} layers, ctx ${ctx}, batch ${batch}, ${batches} batches (${tokens} tokens), SAEs on all ${h} layers (M=8192, k=32), --splice each, ${device}`);
    console.log(`  evaluate(): ${evalSeconds.toFixed(2)} s (${Math.round(tokens / evalSeconds)} tokens/s)`);
    console.log(`  its parts alone: ${(2 * h + 1)} forwards ${parts.forward.toFixed(2)} s + ${h} coder forwards ${parts.coder.toFixed(2)} s = ${partsSeconds.toFixed(2)} s`);
    console.log(`  ratio evaluate / parts: ${(evalSeconds / partsSeconds).toFixed(3)} (target <= 1.15)`);
    console.log(`  (against H+2 = ${h + 2} forwards plus ${h} coder forwards, ${((h + 2) * perForward + parts.coder).toFixed(2)} s, as if one zero-ablated forward served every hookpoint: ${(evalSeconds / ((h + 2) * perForward + parts.coder)).toFixed(3)})`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
