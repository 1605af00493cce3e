// A cross-layer transcoder with --distribute_modules on 2 ranks (gloo, through the real
// torchrun): each rank owns layers j and n-1-j, their encoders and every decoder into them,
// and the ranks share only the sparse codes; the CLT equals one process's on the gathered
// batches bit for bit (topk, a ragged selection, from a cache), resumes bit for bit, and
// finetunes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { CrossLayerTranscoder } from '../../src/coder/cross-layer.js';
import { trainConfig } from '../../src/config/train.js';
import { crossLayerOwners } from '../../src/trainer/cross-layer-placement.js';
import { makeTinyLM, py } from '../helpers/python.js';
import { exited } from '../helpers/processes.js';
import { compareCoders, runBin, writeRankRows } from '../helpers/launch.js';

let work: string;
let modelDir: string;
const B = 4;
const CTX = 16;
const ROWS = 48; // 24 per rank: 6 steps of 4 rows
const LAYERS = ['layers.0.mlp', 'layers.1.mlp', 'layers.2.mlp', 'layers.3.mlp'];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-clt-dist-'));
  modelDir = await makeTinyLM(join(work, 'lm'), { hidden: 32, layers: 4 });
  await writeRankRows({ path: join(work, 'tokens.bin'), interleaved: join(work, 'interleaved.bin'), rows: ROWS, ctx: CTX, batch: B, vocab: 200 });
  // Twice as many rows, each rank's half starting with its half of tokens.bin: a run resumed
  // after tokens.bin's 6 steps goes on with the same rows as one that trains on it from the start.
  await py(
    `import numpy as np
old = np.fromfile(a, dtype=np.uint16).reshape(n, ctx)
new = np.random.default_rng(1).integers(0, 200, size=(n, ctx), dtype=np.uint16)
np.concatenate([old[: n // 2], new[: n // 2], old[n // 2 :], new[n // 2 :]]).tofile(b)`,
    { a: join(work, 'tokens.bin'), b: join(work, 'longer.bin'), n: ROWS, ctx: CTX },
  );
  closeRuntime();
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const common = ['--transcode', '--cross_layer', '--hookpoints', 'layers.*.mlp', '--ctx_len', String(CTX), '--expansion_factor', '2', '--lr', '0.002', '--save_dir', '.', '--log_to_wandb', 'false'];

/** The 2-rank distributed run and the one-process run on the gathered batches; both must finish. */
async function pair(name: string, extra: string[], data = 'tokens.bin'): Promise<{ output: string }> {
  const dm = runBin('sparsify-launch', ['--nproc_per_node', '2', modelDir, data, ...common, ...extra, '--batch_size', String(B), '--run_name', `dm-${name}`, '--distribute_modules'], work);
  const dmExit = await exited(dm);
  expect([dmExit.code, dm.output()]).toEqual([0, expect.stringContaining('Done: 6 steps.')]);
  const single = runBin('sparsify', [modelDir, 'interleaved.bin', ...common, ...extra, '--batch_size', String(2 * B), '--run_name', `single-${name}`], work);
  const singleExit = await exited(single);
  expect([singleExit.code, single.output()]).toEqual([0, expect.stringContaining('Done: 6 steps.')]);
  return { output: dm.output() };
}

describe('--cross_layer --distribute_modules', () => {
  it('places layer j with layer n-1-j, so that every rank holds as many decoders', () => {
    expect(crossLayerOwners(4, 2)).toEqual([0, 1, 1, 0]);
    expect(crossLayerOwners(12, 4)).toEqual([0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 3]);
    // Decoders into layer j: j + 1. With 4 layers on 2 ranks: 1 + 4 = 2 + 3.
    const decoders = (owners: number[], rank: number): number => owners.reduce((sum, r, j) => sum + (r === rank ? j + 1 : 0), 0);
    expect([decoders(crossLayerOwners(4, 2), 0), decoders(crossLayerOwners(4, 2), 1)]).toEqual([5, 5]);
    expect(() => crossLayerOwners(2, 4)).toThrow('distribute_modules: a cross-layer transcoder over 2 layers cannot spread across 4 ranks (each rank owns at least one layer); use at most 2 ranks, or data parallel');
  });

  it('trains each rank\'s layers and saves the CLT folder, bit for bit as one process on the gathered batches', async () => {
    const { output } = await pair('topk', ['-k', '4']);
    expect(output).toContain('its layers spread across 2 ranks (0, 1, 1, 0)');
    expect(output).toContain('Rank 0 trains layers layers.0.mlp, layers.3.mlp of the cross-layer transcoder');
    const s0 = JSON.parse(readFileSync(join(work, 'dm-topk', 'state-rank0.json'), 'utf8')) as { coders: Record<string, unknown> };
    const s1 = JSON.parse(readFileSync(join(work, 'dm-topk', 'state-rank1.json'), 'utf8')) as { coders: Record<string, unknown> };
    expect([Object.keys(s0.coders), Object.keys(s1.coders)]).toEqual([['layers.0.mlp', 'layers.3.mlp'], ['layers.1.mlp', 'layers.2.mlp']]);
    expect(readFileSync(join(work, 'dm-topk', 'cfg.json'), 'utf8')).toBe(readFileSync(join(work, 'single-topk', 'cfg.json'), 'utf8'));
    expect(await compareCoders(join(work, 'dm-topk'), join(work, 'single-topk'), LAYERS)).toBe(0);
    // The saved folder is a whole CLT, with cross-layer decoders that trained.
    const clt = await CrossLayerTranscoder.load(join(work, 'dm-topk'));
    expect(clt.layers).toEqual(LAYERS);
    expect(await py<number>('result = float(p["W_dec"][:, 1:].detach().abs().max())', { p: clt.sources[0] })).toBeGreaterThan(0);
    // Every layer's metrics, in layer order.
    const last = JSON.parse(readFileSync(join(work, 'dm-topk', 'metrics.jsonl'), 'utf8').trim().split('\n').at(-1)!) as Record<string, number>;
    expect(Object.keys(last).filter((k) => k.startsWith('fvu/'))).toEqual(LAYERS.map((l) => `fvu/${l}`));
    closeRuntime();
    // From an activation cache every rank reads every rank's rows (no gather): the same CLT.
    const cache = runBin('sparsify', ['cache', modelDir, 'tokens.bin', '--ctx_len', String(CTX), '--transcode', '--hookpoints', 'layers.*.mlp', '--out', 'acts', '--shard_mb', '0.05'], work);
    expect((await exited(cache)).code).toBe(0);
    const cached = runBin('sparsify-launch', ['--nproc_per_node', '2', '--from_cache', 'acts', ...common, '-k', '4', '--batch_size', String(B), '--run_name', 'dm-cache', '--distribute_modules'], work);
    expect([(await exited(cached)).code, cached.output()]).toEqual([0, expect.stringContaining('Done: 6 steps.')]);
    expect(await compareCoders(join(work, 'dm-cache'), join(work, 'dm-topk'), LAYERS)).toBe(0);
  }, 240_000);

  it('shares a ragged selection (jumprelu) as padded rows, bit for bit', async () => {
    await pair('jumprelu', ['--activation', 'jumprelu', '--target_l0', '4']);
    expect(await compareCoders(join(work, 'dm-jumprelu'), join(work, 'single-jumprelu'), LAYERS)).toBe(0);
  }, 180_000);

  it('with the mse loss every rank divides by every target\'s total variance (all-reduced): as one process', async () => {
    await pair('mse', ['-k', '4', '--cross_layer_loss', 'mse']);
    // The total variance is summed in another order across the ranks: the last bits may differ.
    expect(await compareCoders(join(work, 'dm-mse'), join(work, 'single-mse'), LAYERS)).toBeLessThan(1e-5);
    expect(await compareCoders(join(work, 'dm-mse'), join(work, 'dm-topk'), LAYERS)).toBeGreaterThan(1e-3);
  }, 180_000);

  it('resumes and finetunes from its own checkpoint bit for bit', async () => {
    const resume = ['-k', '4', '--batch_size', String(B), '--distribute_modules'];
    const full = runBin('sparsify-launch', ['--nproc_per_node', '2', modelDir, 'longer.bin', ...common, ...resume, '--run_name', 'dm-full'], work);
    expect((await exited(full)).code).toBe(0);
    // dm-topk trained 6 steps on tokens.bin: go on from there on longer.bin.
    await py('import shutil\nshutil.copytree(a, b)', { a: join(work, 'dm-topk'), b: join(work, 'dm-resumed') });
    const resumed = runBin('sparsify-launch', ['--nproc_per_node', '2', modelDir, 'longer.bin', ...common, ...resume, '--run_name', 'dm-resumed', '--resume'], work);
    const { code } = await exited(resumed);
    expect([code, resumed.output()]).toEqual([0, expect.stringMatching(/Resumed from .*dm-resumed at step 6[\s\S]*Done: 12 steps/)]);
    expect(await compareCoders(join(work, 'dm-resumed'), join(work, 'dm-full'), LAYERS)).toBe(0);
    // Finetuning reads each rank's share from the CLT's files, as one process reads the whole.
    await pair('ft', ['-k', '4', '--finetune', join(work, 'single-topk')]);
    expect(await compareCoders(join(work, 'dm-ft'), join(work, 'single-ft'), LAYERS)).toBe(0);
    expect(existsSync(join(work, 'dm-ft', 'layers.0.mlp', 'cfg.json'))).toBe(false);
  }, 300_000);

  it('refuses what needs a whole CLT on one rank, in one line', () => {
    expect(() => trainConfig({ crossLayer: true, sae: { transcode: true }, distributeModules: true, evalEvery: 5 })).toThrow(/eval_every is not supported with distribute_modules \(no rank holds the whole CLT\)/);
    expect(() => trainConfig({ crossLayer: true, sae: { transcode: true }, distributeModules: true, saveBest: true })).toThrow(/save_best is not supported with distribute_modules yet/);
    expect(() => trainConfig({ crossLayerLoss: 'mse' })).toThrow(/only applies with --cross_layer \(got mse\); a per-layer coder's loss is its fvu/);
  });
});
