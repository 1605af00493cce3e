// `sparsify explore`: the cache beside the run (reused, rebuilt when coders or settings
// change), the static export, and its bad inputs. The served app is driven in a browser by
// the long e2e test (test/e2e/bundled-default.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { CacheIndexSchema } from '../../src/explore/index.js';
import { makeTinyLM } from '../helpers/python.js';
import { CORPUS } from '../helpers/train-fixtures.js';

let work: string;
let run: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-cli-explore-'));
  const modelDir = await makeTinyLM(join(work, 'lm'));
  closeRuntime();
  const trained = await runCli([modelDir, CORPUS, '--ctx_len', '16', '--max_examples', '120', '--holdout', '0.5', '--batch_size', '16', '-k', '4', '--expansion_factor', '2', '--save_dir', work, '--run_name', 'r', '--log_to_wandb', 'false']);
  expect(trained.code).toBe(0);
  run = join(work, 'r');
}, 120_000);
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

describe('sparsify explore', () => {
  it('caches the held-out rows beside the run, exports the site, and reuses the cache while nothing changed', async () => {
    const first = await runCli(['explore', run, '--max_tokens', '320', '--out', join(work, 'site')]);
    expect([first.code, first.err]).toEqual([0, expect.stringMatching(/Caching 2 coder\(s\) on rows 120\.\.140 of \d+ \(not trained on\)/)]);
    expect(first.out.trim()).toBe(join(work, 'site', 'index.html'));
    const index = CacheIndexSchema.parse(JSON.parse(readFileSync(join(run, 'explore', 'index.json'), 'utf8')));
    expect([index.rows.start, index.rows.end, index.max_tokens, Object.keys(index.coders)]).toEqual([120, 140, 320, ['layers.0', 'layers.1']]);
    expect(existsSync(join(work, 'site', 'data', 'coders', '1', 'latents', '1.js'))).toBe(true);

    const again = await runCli(['explore', run, '--max_tokens', '320', '--out', join(work, 'site')]);
    expect([again.code, again.err]).toEqual([0, expect.stringContaining(`Using the latent cache in ${join(run, 'explore')}`)]);
    const other = await runCli(['explore', run, '--max_tokens', '160', '--out', join(work, 'site')]);
    expect([other.code, other.err]).toEqual([0, expect.stringContaining('does not fit: it was built with max_tokens 320, not 160. Building it again.')]);
    const fewer = await runCli(['explore', run, '--hookpoints', 'layers.1', '--max_tokens', '160', '--out', join(work, 'site')]);
    expect(fewer.err).toContain('does not fit: it holds coders layers.0, layers.1, not layers.1. Building it again.');
  }, 120_000);

  it('bad input: no coders, a port out of range, an --out folder that is not an export', async () => {
    mkdirSync(join(work, 'empty'));
    expect((await runCli(['explore', join(work, 'empty')])).err.trim()).toBe(`sparsify explore: ${join(work, 'empty')}: no coder directories (a coder directory holds cfg.json and sae.safetensors)`);
    expect((await runCli(['explore', run, '--port', '70000'])).err.trim()).toBe('sparsify explore: --port must be at most 65535 (got 70000)');
    const bad = await runCli(['explore', run, '--hookpoints', 'layers.1', '--max_tokens', '160', '--out', join(work, 'r')]);
    expect([bad.code, bad.err.trim().split('\n').pop()]).toEqual([1, `sparsify explore: ${join(work, 'r')} exists and is not an explorer export; give a new or empty --out folder`]);
  });

  it('--help lists its options with defaults', async () => {
    const { code, out } = await runCli(['explore', '--help']);
    expect(code).toBe(0);
    for (const flag of ['--max_tokens <n>', '--port <n>', '--host <value>', '--out <value>', '--open [bool]', '--rebuild [bool]', '--seed <n>']) expect(out).toContain(flag);
    expect(out).toContain('(default: this machine only)');
  });
});
