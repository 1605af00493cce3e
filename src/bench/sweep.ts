/**
 * A sweep against separate runs, each a whole `sparsify` process as a user runs it: the CPU
 * bench model (GPT-NeoX hidden 256, 4 layers, ctx 128), 256 rows, batch 8, one hookpoint
 * (layers.3), 8 configurations (k 16/32/64/128 x expansion 4/8): one `--sweep` run against
 * the 8 runs of one configuration each.
 */
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../bridge/paths.js';
import { makeBenchModel } from './fixture.js';

export async function benchSweep(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'sparsify-bench-sweep-'));
  try {
    const [ctx, rows] = [128, 256];
    const { modelDir, bin } = await makeBenchModel(work, ctx, rows);
    const common = [modelDir, bin, '--hookpoints', 'layers.3', '--batch_size', '8', '--ctx_len', String(ctx), '--log_to_wandb', 'false', '--save_dir', work];
    const sparsify = async (args: string[]): Promise<number> => {
      const t0 = performance.now();
      await execa(process.execPath, [join(packageRoot, 'bin', 'sparsify.js'), ...common, ...args], { env: { HF_HUB_OFFLINE: '1', WANDB_MODE: 'disabled' } });
      return (performance.now() - t0) / 1000;
    };
    const ks = [16, 32, 64, 128];
    const efs = [4, 8];
    let separate = 0;
    for (const k of ks) for (const ef of efs) separate += await sparsify(['-k', String(k), '--expansion_factor', String(ef), '--run_name', `k${k}-ef${ef}`]);
    const sweep = await sparsify(['--sweep', `k=${ks.join(',')}`, `expansion_factor=${efs.join(',')}`, '--run_name', 'sweep']);
    const floor = await sparsify(['-k', '1', '--expansion_factor', '1', '--run_name', 'floor']);
    console.log(`sweep: GPT-NeoX hidden 256 x 4 layers, ctx ${ctx}, ${rows} rows, batch 8, layers.3, ${ks.length * efs.length} configurations (k ${ks.join('/')} x expansion ${efs.join('/')}), whole processes`);
    console.log(`  8 separate runs: ${separate.toFixed(1)} s; one --sweep run: ${sweep.toFixed(1)} s; ratio ${(sweep / separate).toFixed(2)} (target <= 0.40)`);
    console.log(`  (a run whose coder costs next to nothing, k 1 x expansion 1: ${floor.toFixed(1)} s: start-up, data and model forward)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
