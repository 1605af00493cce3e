// Side by side with the reference's training loop restated in plain PyTorch
// (test/helpers/reference_trainer.py; checked bit for bit against the real eai-sparsify 1.3.0
// when it was written): the variants where the two once parted. Each ends bit-identical.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer } from '../../src/trainer/index.js';
import { closeRuntime } from '../../src/bridge/index.js';
import type { TrainConfigInput } from '../../src/config/index.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { py } from '../helpers/python.js';

let work: string;
let fx: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-fidelity-'));
  fx = await tinyFixture(work, { rows: 256, ctxLen: 32 });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

/** Train ours with `cfg` and the restated reference with `reference` kwargs; the worst relative difference. */
async function sideBySide(name: string, cfg: TrainConfigInput, reference: Record<string, unknown>, rows = 256): Promise<number> {
  const trainer = new Trainer({ logToWandb: false, saveDir: work, runName: name, ...cfg }, fx.data, fx.model, { log: () => undefined });
  await trainer.fit();
  return py<number>(
    `
import importlib.util
spec = importlib.util.spec_from_file_location("reference_trainer", helper); mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
all_rows = torch.cat([rows.rows(i, min(i + 64, n)) for i in range(0, n, 64)])
want = mod.train(model, all_rows, ["layers.0", "layers.1"], **kwargs)
from safetensors.torch import load_file
result = 0.0
for h, params in want.items():
    got = load_file(f"{run}/{h}/sae.safetensors")
    for k, t in params.items():
        result = max(result, ((got[k] - t).abs().max() / (t.abs().max() + 1e-12)).item())
`,
    { helper: new URL('../helpers/reference_trainer.py', import.meta.url).pathname, model: fx.model.model, rows: fx.data.rows, n: Math.min(rows, fx.data.numRows), run: trainer.runDir, kwargs: reference },
  );
}

describe('fidelity to the reference training loop', () => {
  it('k decay: batch i >= 1 trains with the k of batch i-1, rounded as Python rounds (k_decay_steps 16)', async () => {
    const diff = await sideBySide('kdecay', { sae: { k: 4, numLatents: 64 }, batchSize: 8, lr: 2e-3, kDecaySteps: 16 }, { k: 4, num_latents: 64, batch_size: 8, optimizer: 'signum', lr: 2e-3, k_decay_steps: 16 });
    expect(diff).toBe(0);
  });

  it('AuxK and Multi-TopK together, with excluded tokens: the counters count kept tokens; 32 signum steps', async () => {
    const exclude = Array.from({ length: 60 }, (_, i) => i);
    const diff = await sideBySide(
      'auxk-mtk-exclude',
      { sae: { k: 4, numLatents: 64, multiTopk: true }, batchSize: 8, lr: 2e-3, auxkAlpha: 0.1, deadFeatureThreshold: 500, excludeTokens: exclude },
      { k: 4, num_latents: 64, batch_size: 8, optimizer: 'signum', lr: 2e-3, auxk_alpha: 0.1, dead_feature_threshold: 500, exclude_tokens: exclude, multi_topk: true },
    );
    expect(diff).toBe(0);
  });

  it('Muon (Newton-Schulz in bf16 as Python groups c * A @ A) with a short last batch: schedules over whole batches', async () => {
    const diff = await sideBySide('muon', { sae: { k: 4, numLatents: 64 }, batchSize: 10, optimizer: 'muon', lr: 1e-2, lrWarmupSteps: 3 }, { k: 4, num_latents: 64, batch_size: 10, optimizer: 'muon', lr: 1e-2, warmup: 3 });
    expect(diff).toBe(0);
  });

  it('Adam with a short last batch and gradient accumulation', async () => {
    const diff = await sideBySide('adam-acc', { sae: { k: 4, numLatents: 64 }, batchSize: 6, optimizer: 'adam', lr: 1e-3, lrWarmupSteps: 3, gradAccSteps: 2 }, { k: 4, num_latents: 64, batch_size: 6, optimizer: 'adam', lr: 1e-3, warmup: 3, grad_acc_steps: 2 });
    expect(diff).toBe(0);
  });
});
