// --eval_every: evaluation during training on held-out rows, without touching the training.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer, type StepReport } from '../../src/trainer/index.js';
import { closeRuntime } from '../../src/bridge/index.js';
import type { TrainConfigInput } from '../../src/config/index.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { py } from '../helpers/python.js';

let work: string;
let fx: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-eval-train-'));
  fx = await tinyFixture(work, { rows: 80, ctxLen: 16, kind: 'causal_lm' });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

describe('--eval_every', () => {
  for (const optimizer of ['signum', 'adam'] as const) {
    it(`logs eval/<metric>/<hookpoint> every N steps and leaves the coders bit-identical: ${optimizer}`, async () => {
      const train = { ...fx.data, numRows: 64 }; // rows 64..80 held out
      const cfg: TrainConfigInput = { sae: { k: 4, numLatents: 64 }, batchSize: 8, optimizer, lr: 2e-3, logToWandb: false, saveDir: work, auxkAlpha: 0.1, deadFeatureThreshold: 200 };
      await new Trainer({ ...cfg, runName: `plain-${optimizer}` }, train, fx.model, { log: () => undefined }).fit();
      const reports: StepReport[] = [];
      await new Trainer({ ...cfg, runName: `eval-${optimizer}`, evalEvery: 3, evalTokens: 160 }, train, fx.model, {
        log: () => undefined,
        onStep: (r) => reports.push(r),
        evalData: { dataset: fx.data, rows: [64, 74] },
      }).fit();
      const same = await py<boolean>(
        'from safetensors.torch import load_file\nresult = all(all(torch.equal(a[k], b[k]) for k in a) for a, b in [(load_file(f"{x}/{h}/sae.safetensors"), load_file(f"{y}/{h}/sae.safetensors")) for h in ["layers.0", "layers.1"]])',
        { x: join(work, `plain-${optimizer}`), y: join(work, `eval-${optimizer}`) },
      );
      expect(same).toBe(true);
      expect(reports.filter((r) => r.eval).map((r) => r.optimizerStep)).toEqual([3, 6]);
      const evaluated = reports.find((r) => r.eval)!.eval!;
      expect(evaluated.rows).toEqual({ start: 64, end: 74, of: 80 });
      expect(evaluated.coders['layers.1']!.splice).not.toBeNull();
      const lines = readFileSync(join(work, `eval-${optimizer}`, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
      const withEval = lines.filter((l) => 'eval/fvu/layers.0' in l);
      expect(withEval.map((l) => l.optimizer_step)).toEqual([3, 6]);
      expect(withEval[0]).toHaveProperty('eval/ce_loss_recovered/layers.1');
      expect(withEval[0]!['eval/explained_variance/layers.0']).toBeGreaterThan(-1);
    });
  }
});
