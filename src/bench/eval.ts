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
import { evalPython } from '../bridge/ops.js';
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
    const parts = await evalPython<{ forward: number; coder: number }>(
      `
import time
hps = [f"layers.{i}" for i in range(layers)]
base = model.base_model
fwd = coder_t = 0.0
for b in range(a, z, bs):
    ids = rows.rows(b, b + bs).to(device)
    acts = {}
    hs = [base.get_submodule(h).register_forward_hook(lambda m, i, o, h=h: acts.__setitem__(h, (o[0] if isinstance(o, tuple) else o).flatten(0, 1))) for h in hps]
    with torch.no_grad():
        t = time.perf_counter(); model(ids).logits.float().log_softmax(-1); fwd += time.perf_counter() - t
    for h in hs: h.remove()
    with torch.no_grad():
        for _ in range(2 * len(hps)):
            t = time.perf_counter(); model(ids).logits.float().log_softmax(-1); fwd += time.perf_counter() - t
        for h, p in zip(hps, params):
            t = time.perf_counter()
            x = acts[h]
            pre = torch.relu(torch.nn.functional.linear(x - p["b_dec"], p["encoder.weight"], p["encoder.bias"]))
            v, i = pre.topk(32, sorted=False)
            torch.nn.functional.embedding_bag(i, p["W_dec"], mode="sum", per_sample_weights=v) + p["b_dec"]
            coder_t += time.perf_counter() - t
result = {"forward": fwd, "coder": coder_t}`,
      { model: model.model, rows: data.rows, a: rows[0], z: rows[1], bs: batch, device, layers, params: [...coders.values()].map((c) => c.params) },
    );
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
