/**
 * The architectures' quality and cost on the bundled model (`npm run bench`): topk, batchtopk,
 * matryoshka-batchtopk and jumprelu SAEs on layers.1, trained one after another on the same
 * tokens (the bundled default's rows, ctx 128, batch 16, its optimizer and learning rate), then
 * evaluated on the held-out tenth: fvu, CE loss recovered and the L0 measured there (the batch
 * coders by their batch selection, at topk's L0, and by their learned threshold), and each
 * one's training step time relative to topk's. k 32 for the three that select by k; jumprelu
 * aims at --target_l0 32, and its measured L0 says how near it got in this short run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRuntime } from '../bridge/runtime.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import type { SparseCoderConfigInput } from '../config/sparse-coder.js';
import type { TrainConfigInput } from '../config/train.js';
import { loadDataset } from '../data/dataset.js';
import { trainingRows } from '../data/split.js';
import { evaluate } from '../eval/index.js';
import { bundledDefault } from '../model/bundled.js';
import { loadModel } from '../model/language-model.js';
import { Trainer } from '../trainer/trainer.js';

interface Architecture {
  name: string;
  sae: SparseCoderConfigInput;
  train?: Partial<TrainConfigInput>;
}

/** The latents of layers.1's coders: hidden 128 x the default expansion 32. */
const LATENTS = 4096;

export async function benchArchitectures(epochs = Number(process.env.BENCH_ARCH_EPOCHS ?? 1)): Promise<void> {
  const rt = await getRuntime();
  const work = mkdtempSync(join(tmpdir(), 'sparsify-bench-arch-'));
  try {
    const { ctxLen, holdout, batchSize } = bundledDefault.settings;
    const device = rt.info.cuda ? 'cuda' : 'cpu';
    const model = await loadModel(bundledDefault.model, { kind: 'causal_lm', device });
    const full = await loadDataset(bundledDefault.dataset, { tokenizer: { nameOrPath: bundledDefault.model }, ctxLen });
    const rows = trainingRows(full.numRows, { holdout });
    const steps = Math.floor(rows / batchSize) * epochs;
    // Enough steps for the thresholds and the L0 loss to act in a short run.
    const short = { thresholdStartStep: Math.floor(steps / 4), sparsityWarmupSteps: Math.floor(steps / 4) };
    const architectures: Architecture[] = [
      { name: 'topk', sae: { activation: 'topk', k: 32 } },
      { name: 'batchtopk', sae: { activation: 'batchtopk', k: 32 }, train: short },
      { name: 'matryoshka-batchtopk', sae: { activation: 'batchtopk', k: 32, matryoshkaPrefixes: [LATENTS / 16, LATENTS / 4] }, train: short },
      { name: 'jumprelu', sae: { activation: 'jumprelu' }, train: { ...short, targetL0: 32 } },
    ];
    // BENCH_SPARSE_BACKWARD=gemm: every architecture with the gemm weight gradients (default: auto).
    const sparseBackward = (process.env.BENCH_SPARSE_BACKWARD ?? 'auto') as TrainConfigInput['sparseBackward'];
    // BENCH_ARCHITECTURES=batchtopk,jumprelu runs only those, and topk (the others are relative to it).
    const only = process.env.BENCH_ARCHITECTURES?.split(',');
    const chosen = only ? architectures.filter((a) => a.name === 'topk' || only.includes(a.name)) : architectures;
    const results: { name: string; msPerStep: number; fvu: number; ceRecovered: number; l0: number }[] = [];
    const warmup = 3;
    for (const a of chosen) {
      const data = { ...full, numRows: Math.floor(rows / batchSize) * batchSize };
      let t0 = 0;
      let t1 = 0;
      const trainer = new Trainer(
        { sae: a.sae, ...a.train, batchSize, hookpoints: ['layers.1'], saveEvery: 1_000_000, logToWandb: false, saveDir: work, runName: a.name, epochs, sparseBackward } as TrainConfigInput,
        data,
        model,
        {
          log: () => undefined,
          onStep: (r) => {
            if (r.step === warmup) t0 = performance.now();
            t1 = performance.now();
          },
        },
      );
      await trainer.fit();
      const coders = await SparseCoder.loadMany(join(work, a.name));
      const msPerStep = (t1 - t0) / (steps - warmup);
      // A coder with a learned threshold is measured both ways: by its batch selection (L0 k,
      // the equal-L0 comparison with topk) and by its threshold (how inference encodes).
      const learned = (await coders.get('layers.1')!.threshold()) !== undefined;
      for (const encodeMode of learned ? (['topk', 'threshold'] as const) : (['auto'] as const)) {
        const report = await evaluate(model, coders, full, { rows: [rows, full.numRows], batchSize: 8, encodeMode });
        const c = report.coders['layers.1']!;
        const name = encodeMode === 'auto' ? a.name : `${a.name} (${encodeMode === 'topk' ? 'batch' : 'threshold'})`;
        results.push({ name, msPerStep, fvu: c.fvu, ceRecovered: c.splice!.ce_loss_recovered, l0: c.l0 });
      }
    }
    const topk = results[0]!;
    console.log(`architectures: the bundled model's layers.1 (M=${LATENTS}), ${steps} steps of ${batchSize} x ${ctxLen} tokens each, evaluated on the held-out ${full.numRows - rows} rows, ${device}, --sparse_backward ${sparseBackward}`);
    console.log(`  ${'architecture'.padEnd(34)} ${'L0'.padStart(7)} ${'fvu'.padStart(7)} ${'CE rec.'.padStart(8)} ${'ms/step'.padStart(8)} ${'vs topk'.padStart(8)}`);
    for (const r of results) {
      const target = r.name.includes('batchtopk') ? ' (target <= 1.15)' : '';
      console.log(`  ${r.name.padEnd(34)} ${r.l0.toFixed(1).padStart(7)} ${r.fvu.toFixed(4).padStart(7)} ${r.ceRecovered.toFixed(4).padStart(8)} ${r.msPerStep.toFixed(0).padStart(8)} ${(r.msPerStep / topk.msPerStep).toFixed(3).padStart(8)}${target}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
