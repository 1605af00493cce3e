// --sparse_backward gemm (the CUDA default) trains as index_add (the reference's kernels)
// does, up to float rounding: the same losses step by step, for fvu and end-to-end training.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer, type StepReport } from '../../src/trainer/trainer.js';
import { closeRuntime } from '../../src/bridge/index.js';
import type { TrainConfigInput } from '../../src/config/train.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { py } from '../helpers/python.js';

let work: string;
let base: Fixture;
let lm: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-sparse-backward-'));
  base = await tinyFixture(work, { rows: 48, ctxLen: 16 });
  lm = await tinyFixture(join(work, 'lm'), { rows: 48, ctxLen: 16, kind: 'causal_lm' });
  await countScratchUses();
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

// Programs compiled from here on count their uses of the zero matrix (only the gemm kernels use one).
const countScratchUses = (): Promise<unknown> =>
  py(
    'import builtins\nfrom sparsify_runtime import kernel_support, program\nbuiltins._scratch_uses = 0\ndef counting(*a, **k):\n    builtins._scratch_uses += 1\n    return kernel_support.zero_scratch(*a, **k)\nprogram.NAMESPACE["zero_scratch"] = counting',
  );
const scratchUses = (): Promise<number> => py<number>('import builtins\nresult = builtins._scratch_uses');
const scratchHeld = (): Promise<number> => py<number>('from sparsify_runtime import kernel_support\nresult = len(kernel_support._SCRATCH)');

let runs = 0;
async function losses(fx: Fixture, cfg: TrainConfigInput): Promise<number[]> {
  const reports: StepReport[] = [];
  const trainer = new Trainer({ logToWandb: false, saveDir: work, runName: `run${(runs += 1)}`, batchSize: 8, ...cfg }, fx.data, fx.model, {
    log: () => undefined,
    onStep: (r) => reports.push(r),
  });
  await trainer.fit();
  return reports.flatMap((r) =>
    Object.keys(r.metrics)
      .sort()
      .flatMap((h) => Object.entries(r.metrics[h]!).sort(([a], [b]) => a.localeCompare(b)).map(([, v]) => v as number)),
  );
}

describe('--sparse_backward gemm', () => {
  const cases: { label: string; fx: () => Fixture; cfg: TrainConfigInput }[] = [
    { label: 'fvu, adam, AuxK and Multi-TopK', fx: () => base, cfg: { sae: { k: 4, expansionFactor: 4, multiTopk: true }, optimizer: 'adam', lr: 3e-3, auxkAlpha: 0.1, deadFeatureThreshold: 16 } },
    { label: 'fvu, transcoder with skip connection', fx: () => base, cfg: { sae: { k: 4, expansionFactor: 4, transcode: true, skipConnection: true }, optimizer: 'adam', lr: 3e-3, hookpoints: ['layers.*.mlp'] } },
    { label: 'ce through two coders (gradients reach the first through the second)', fx: () => lm, cfg: { sae: { k: 4, expansionFactor: 4 }, lossFn: 'ce', optimizer: 'adam', lr: 3e-3 } },
  ];
  for (const c of cases) {
    it(`gives index_add's losses step by step: ${c.label}`, async () => {
      const before = await scratchUses();
      const reference = await losses(c.fx(), { ...c.cfg, sparseBackward: 'index_add' });
      expect(await scratchUses()).toBe(before);
      const gemm = await losses(c.fx(), { ...c.cfg, sparseBackward: 'gemm' });
      expect(await scratchUses()).toBeGreaterThan(before); // the gemm kernels ran
      expect(await scratchHeld()).toBe(0); // and their zero matrices were released when training ended
      expect(gemm).toHaveLength(reference.length);
      expect(reference.length).toBeGreaterThan(6);
      const worst = Math.max(...reference.map((v, i) => Math.abs(gemm[i]! - v) / Math.max(Math.abs(v), 1e-6)));
      // On CPU at these sizes the products add the same terms in the same order (the dense
      // matrix's zeros change no sum), so the figures often agree to the bit.
      expect(worst).toBeLessThan(1e-3);
    });
  }
});
