// Side by side: coders trained here equal those of the reference's loop (restated in plain
// PyTorch in test/helpers/reference_trainer.py) with the same seed, config, model and data order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer } from '../../src/trainer/trainer.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { py } from '../helpers/python.js';

let work: string;
let fx: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-ref-'));
  fx = await tinyFixture(work, { rows: 96, ctxLen: 32 });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

describe('side by side with the reference training loop', () => {
  for (const optimizer of ['signum', 'adam'] as const) {
    it(`${optimizer}: same seed, config, model and data order give the same coders`, async () => {
      const lr = optimizer === 'signum' ? 2e-3 : 1e-3;
      const trainer = new Trainer(
        { sae: { k: 4, numLatents: 64 }, batchSize: 8, optimizer, lr, lrWarmupSteps: 3, logToWandb: false, saveDir: work, runName: optimizer },
        fx.data,
        fx.model,
        { log: () => undefined },
      );
      await trainer.fit();
      const diffs = await py<Record<string, number>>(
        `
import pathlib
import importlib.util
spec = importlib.util.spec_from_file_location("reference_trainer", helper)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
ns = vars(mod)
all_rows = torch.cat([rows.rows(i, min(i + 64, rows_n)) for i in range(0, rows_n, 64)])
want = ns["train"](model, all_rows, ["layers.0", "layers.1"], k=4, num_latents=64, batch_size=8, optimizer=opt, lr=lr, warmup=3)
from safetensors.torch import load_file
result = {}
for h, params in want.items():
    got = load_file(f"{run}/{h}/sae.safetensors")
    for n, t in params.items():
        result[f"{h}/{n}"] = (got[n] - t).abs().max().item() / (t.abs().max().item() + 1e-12)
`,
        { helper: new URL('../helpers/reference_trainer.py', import.meta.url).pathname, model: fx.model.model, rows: fx.data.rows, rows_n: fx.data.numRows, opt: optimizer, lr, run: trainer.runDir },
      );
      expect(Object.keys(diffs)).toHaveLength(8);
      for (const [name, rel] of Object.entries(diffs)) expect([name, rel < 1e-4]).toEqual([name, true]);
    });
  }
});
