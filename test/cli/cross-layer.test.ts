// `sparsify --transcode --cross_layer`: one cross-layer transcoder trained over the MLPs of a
// tiny model (its folder loads as a CrossLayerTranscoder whose forward gives the logged fvu
// falling), resumed from its checkpoint, and each unsupported combination refused in one line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { CrossLayerTranscoder } from '../../src/coder/index.js';
import { runCli } from '../helpers/cli.js';
import { makeTinyLM } from '../helpers/python.js';
import { CORPUS } from '../helpers/train-fixtures.js';

let work: string;
let modelDir: string;
const args = (): string[] => [modelDir, CORPUS, '--transcode', '--cross_layer', '--hookpoints', 'layers.*.mlp', '--ctx_len', '16', '--max_examples', '96', '--batch_size', '8', '-k', '4', '--expansion_factor', '2', '--lr', '0.002', '--save_dir', work, '--log_to_wandb', 'false'];
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-cli-clt-'));
  modelDir = await makeTinyLM(join(work, 'lm'), { layers: 3 });
  closeRuntime();
}, 120_000);
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

describe('sparsify --cross_layer', () => {
  it('trains one CLT over the MLPs, saves its folder, and resumes from it', async () => {
    const run = await runCli([...args(), '--run_name', 'clt', '--save_every', '6']);
    expect([run.code, run.err]).toEqual([0, expect.stringContaining('Training one cross-layer transcoder over 3 layers (layers.0.mlp, layers.1.mlp, layers.2.mlp): 6 decoders')]);
    const dir = join(work, 'clt');
    const clt = await CrossLayerTranscoder.load(dir);
    expect([clt.layers, clt.numLatents, clt.cfg.k]).toEqual([['layers.0.mlp', 'layers.1.mlp', 'layers.2.mlp'], 64, 4]);
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(lines.length).toBe(12);
    for (const layer of clt.layers) expect(lines.at(-1)![`fvu/${layer}`]!).toBeLessThan(lines[0]![`fvu/${layer}`]!);
    // The cross-layer decoders trained (they start at zero).
    const moved = await (await import('../helpers/python.js')).py<number>('result = float(p["W_dec"][:, 1:].detach().abs().max())', { p: clt.sources[0] });
    expect(moved).toBeGreaterThan(0);
    closeRuntime();
    const resumed = await runCli([...args(), '--run_name', 'clt', '--resume', '--max_examples', '144']);
    expect([resumed.code, resumed.err]).toEqual([0, expect.stringMatching(/Resumed from .* at step 12/)]);
    expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').length).toBe(18);
    expect(existsSync(join(dir, 'layers.2.mlp', 'cfg.json'))).toBe(false);
    // sparsify eval: each target, then the replacement model, on the rows it did not train on.
    const ev = await runCli(['eval', dir, '--max_tokens', '512']);
    expect([ev.code, ev.err]).toEqual([0, expect.stringContaining('Evaluating the cross-layer transcoder over layers.0.mlp, layers.1.mlp, layers.2.mlp on rows 144..')]);
    expect(ev.out).toMatch(/^layers\.2\.mlp +[\d.]+ +[\d.]+ +[\d.]+/m);
    expect(ev.out).toMatch(/^\(replacement model\) +[\d.]+ +-?[\d.]+ +[\d.]+$/m);
    const report = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')) as { cross_layer: boolean; targets: Record<string, unknown>; replacement: { ce_loss_recovered: number } };
    expect([report.cross_layer, Object.keys(report.targets), typeof report.replacement.ce_loss_recovered]).toEqual([true, clt.layers, 'number']);
    // Per-layer tools given the CLT say what it is.
    const ex = await runCli(['explore', dir, '--out', join(work, 'site')]);
    expect([ex.code, ex.err.trim()]).toEqual([1, `sparsify explore: ${dir} is a cross-layer transcoder: sparsify explore does not show those yet (sparsify eval evaluates it)`]);
    const ex2 = await runCli(['export', dir, '--format', 'saelens', '--out', join(work, 'sl')]);
    expect(ex2.err).toContain('is a cross-layer transcoder, which this format does not hold (circuit-tracer does)');
  }, 300_000);

  it('trains a jumprelu CLT towards a target L0 (each source its own L0 loss)', async () => {
    const jr = args().filter((a, i, all) => a !== '-k' && all[i - 1] !== '-k');
    const run = await runCli([...jr, '--activation', 'jumprelu', '--target_l0', '8', '--run_name', 'jr']);
    expect(run.code).toBe(0);
    const lines = readFileSync(join(work, 'jr', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    for (const layer of ['layers.0.mlp', 'layers.1.mlp', 'layers.2.mlp']) {
      expect(lines.at(-1)![`l0/${layer}`]).toEqual(expect.any(Number));
      expect(lines.at(-1)![`sparsity_loss/${layer}`]).toEqual(expect.any(Number));
    }
    expect((await CrossLayerTranscoder.load(join(work, 'jr'))).cfg.activation).toBe('jumprelu');
  }, 120_000);

  it('refuses what it does not support, in one line each', async () => {
    const err = async (...extra: string[]): Promise<string> => (await runCli([...args(), '--run_name', 'bad', ...extra])).err.trim().split('\n').pop()!;
    const base = args();
    expect((await runCli([...base.filter((a) => a !== '--transcode'), '--run_name', 'bad'])).err.trim()).toBe('sparsify: --cross_layer: a cross-layer transcoder is a transcoder: give --transcode');
    expect(await err('--loss_fn', 'ce')).toBe("sparsify: --cross_layer: trains with loss_fn fvu only (got ce): its loss is the sum of every target's fvu");
    expect(await err('--optimizer', 'muon')).toBe('sparsify: --cross_layer: not with muon: its decoders are [latents, targets, width], not matrices');
    const at = base.indexOf('layers.*.mlp');
    const gap = await runCli([...base.slice(0, at), 'layers.0.mlp', 'layers.2.mlp', ...base.slice(at + 1), '--run_name', 'gap']);
    expect([gap.code, gap.err.trim().split('\n').pop()]).toEqual([1, 'sparsify: cross_layer: the layers must be a contiguous run (got 0, 2)']);
  }, 120_000);
});
