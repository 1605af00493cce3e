/**
 * The latent cache's cost against its parts: caching ~100k tokens of the bundled model's 4
 * hookpoints (SAEs of 4,096 latents, k=32) with `buildLatentCache`, against one model forward
 * plus the 4 coders' encode over the same tokens, timed alone in Python.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRuntime } from '../bridge/runtime.js';
import { evalPython } from '../bridge/ops.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { loadDataset } from '../data/dataset.js';
import { buildLatentCache, readLatentCache } from '../explore/cache.js';
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
    await evalPython('import numpy as np\nt = source.rows(0, n).flatten()\nreps = -(-need // t.numel())\nt.repeat(reps)[:need].numpy().astype(np.uint16).tofile(bin)', { source: text.rows, n: text.numRows, need: rows * ctx, bin });
    const data = await loadDataset(bin, { ctxLen: ctx });
    const hookpoints = ['layers.0', 'layers.1', 'layers.2', 'layers.3'];
    const coders = [];
    for (const [i, h] of hookpoints.entries()) coders.push({ name: h, hookpoint: h, coder: await SparseCoder.create(128, { k: 32, numLatents: 4096 }, { seed: i, device }) });
    await buildLatentCache(model, coders, data, join(work, 'warm'), { rows: [0, batch], batchSize: batch }); // compiles
    const t0 = performance.now();
    await buildLatentCache(model, coders, data, join(work, 'explore'), { rows: [0, rows], batchSize: batch, tokenizer });
    const cacheSeconds = (performance.now() - t0) / 1000;
    const parts = await evalPython<{ forward: number; encode: number }>(
      `
import time
base = model.base_model
fwd = enc = 0.0
sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
for b in range(0, n_rows, bs):
    ids = rows.rows(b, min(b + bs, n_rows)).to(device)
    acts = {}
    hs = [base.get_submodule(h).register_forward_hook(lambda m, i, o, h=h: acts.__setitem__(h, (o[0] if isinstance(o, tuple) else o).flatten(0, 1))) for h in hps]
    with torch.no_grad():
        sync(); t = time.perf_counter(); base(ids); sync(); fwd += time.perf_counter() - t
        for h, p in zip(hps, params):
            sync(); t = time.perf_counter()
            pre = torch.relu(torch.nn.functional.linear(acts[h] - p["b_dec"], p["encoder.weight"], p["encoder.bias"]))
            pre.topk(32, sorted=False)
            sync(); enc += time.perf_counter() - t
    for h in hs: h.remove()
result = {"forward": fwd, "encode": enc}`,
      { model: model.model, rows: data.rows, n_rows: rows, bs: batch, device, hps: hookpoints, params: coders.map((c) => c.coder.params) },
    );
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
    await evalPython(
      `
import json, os
from safetensors.torch import save_file
os.makedirs(os.path.join(d, "coders"))
g = torch.Generator().manual_seed(0)
rows, ctx, vocab, slots = 100, 1024, 50_000, {"top": 20, "sample": 50}
save_file({"input_ids": torch.randint(0, vocab, (rows, ctx), generator=g, dtype=torch.int32)}, os.path.join(d, "tokens.safetensors"))
count = torch.randint(0, 2000, (m,), generator=g)
st = {"tokens": torch.tensor(rows * ctx), "count": count, "act_sum": count.double() * 1.5, "act_max": torch.rand(m, generator=g) * 10,
      "hist": torch.randint(0, 40, (m, 50), generator=g), "hist_range": torch.full((m,), 16.0),
      "logit_top_id": torch.randint(0, vocab, (m, 10), generator=g), "logit_top_value": torch.rand(m, 10, generator=g),
      "logit_bottom_id": torch.randint(0, vocab, (m, 10), generator=g), "logit_bottom_value": -torch.rand(m, 10, generator=g),
      "neighbour_id": torch.randint(0, m, (m, 5), generator=g), "neighbour_similarity": torch.rand(m, 5, generator=g)}
for p, n in slots.items():
    st[p + "_value"] = torch.rand(m, n, generator=g).sort(dim=1, descending=True).values * 10
    st[p + "_token"] = torch.randint(0, rows * ctx, (m, n), generator=g)
    st[p + "_window"] = torch.rand(m, n, 21, generator=g) * (torch.rand(m, n, 21, generator=g) < 0.2)
st["top_first_token"] = st["top_token"][:, 0].clone()
save_file(st, os.path.join(d, "coders", "layers.6.safetensors"))
json.dump([f"tok{i}" for i in range(vocab)], open(os.path.join(d, "vocab.json"), "w"))
json.dump({"version": 1, "complete": True, "created": "2026-01-01T00:00:00Z", "model": "synthetic", "dataset": "synthetic", "split": None, "ctx_len": ctx,
  "rows": {"start": 0, "end": rows, "of": rows}, "seed": 0, "max_tokens": rows * ctx,
  "layout": {"top": 20, "reservoir": 50, "before": 16, "after": 4, "bins": 50, "intervals": 10, "perInterval": 5, "logits": 10, "neighbours": 5},
  "vocab_size": vocab, "has_logits": True,
  "coders": {"layers.6": {"hookpoint": "layers.6", "source": None, "hash": "", "file": "coders/layers.6.safetensors", "num_latents": m, "d_in": 768, "k": 32}}}, open(os.path.join(d, "index.json"), "w"))
result = None`,
      { d: dir, m },
    );
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
