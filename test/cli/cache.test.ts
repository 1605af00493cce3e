// `sparsify cache` and `sparsify --from_cache`: the size said up front, a run from the cache
// with its model and data recorded, and the bad inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { bundledDefault } from '../../src/model/index.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-cli-cache-'));
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

describe('sparsify cache', () => {
  it('writes the bundled model\'s activations, saying the size first; a run trains from them without the model', async () => {
    const dir = join(work, 'acts');
    const cached = await runCli(['cache', '--out', dir, '--max_tokens', '4096', '--hookpoints', 'layers.1', 'layers.2', '--dtype', 'bfloat16', '--shard_mb', '0.25']);
    expect([cached.code, cached.err]).toEqual([0, expect.stringMatching(/Caching 2 hookpoint\(s\) \(layers\.1, layers\.2\) over 32 rows \(4096 tokens\), bfloat16: [\d.]+ MiB in 11 shard\(s\)/)]);
    expect(cached.err).toMatch(/Done: 4096 tokens, [\d.]+ MiB in [\d.]+ s \(\d+ tokens\/s, [\d.]+ MB\/s\)/);
    const trained = await runCli(['--from_cache', dir, '--save_dir', work, '--run_name', 'fc', '--batch_size', '8', '-k', '8', '--expansion_factor', '2', '--log_to_wandb', 'false']);
    expect([trained.code, trained.err]).toEqual([0, expect.stringContaining(`Training from the activation cache in ${dir}`)]);
    const config = JSON.parse(readFileSync(join(work, 'fc', 'config.json'), 'utf8')) as Record<string, unknown>;
    expect([config.model, config.dataset, config.from_cache]).toEqual([bundledDefault.model, bundledDefault.dataset, dir]);
  }, 120_000);

  it('bad input: MODEL with --from_cache, ce from a cache, --eval_every, a folder that is not a cache', async () => {
    const dir = join(work, 'acts');
    expect((await runCli(['gpt2', '--from_cache', dir])).err.trim()).toBe('sparsify: give MODEL [DATASET] or --from_cache, not both: a cache already holds the activations of its model and data');
    expect((await runCli(['--from_cache', dir, '--loss_fn', 'ce', '--save_dir', work, '--run_name', 'ce'])).err.trim()).toBe('sparsify: --from_cache trains with loss_fn fvu only (got ce): ce and kl need the model\'s forward');
    expect((await runCli(['--from_cache', dir, '--eval_every', '5', '--save_dir', work, '--run_name', 'ev'])).err.trim()).toMatch(/^sparsify: --eval_every needs the model/);
    expect((await runCli(['--from_cache', work, '--save_dir', work, '--run_name', 'nc'])).err.trim()).toBe(`sparsify: ${work} is not an activation cache (no index.json); write one with \`sparsify cache\``);
    expect((await runCli(['--from_cache', join(work, 'nope'), '--save_dir', work, '--run_name', 'nc'])).err.trim()).toBe(`sparsify: from_cache: no such file or directory: ${join(work, 'nope')}`);
    expect((await runCli(['cache', '--out', dir, '--dtype', 'int8'])).err.trim()).toMatch(/option '--dtype <choice>' argument 'int8' is invalid. Allowed choices are float32, bfloat16, float16/);
  }, 60_000);
});
