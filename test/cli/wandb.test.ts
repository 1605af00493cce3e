// wandb logging when wandb is importable (here a recording stand-in on PYTHONPATH).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { makeTinyLM } from '../helpers/python.js';
import { exited, repoRoot, spawnTs } from '../helpers/processes.js';
import { CORPUS } from '../helpers/train-fixtures.js';

let work: string;
let modelDir: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-wandb-'));
  modelDir = await makeTinyLM(join(work, 'lm'));
  closeRuntime();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

it('logs the config, every wandb_log_frequency steps, and finishes', async () => {
  const logFile = join(work, 'calls.jsonl');
  const child = spawnTs('test/fixtures/cli.ts', [modelDir, CORPUS, '--ctx_len', '32', '--max_examples', '48', '--batch_size', '8', '--expansion_factor', '2', '-k', '4', '--save_dir', work, '--run_name', 'wb', '--wandb_log_frequency', '2'], {
    ...process.env,
    PYTHONPATH: join(repoRoot, 'test', 'fixtures', 'fake_wandb'),
    FAKE_WANDB_LOG: logFile,
  });
  expect((await exited(child)).code).toBe(0);
  const calls = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { call: string; step?: number; name?: string; config?: Record<string, unknown>; metrics?: Record<string, number> });
  expect(calls[0]).toMatchObject({ call: 'init', name: 'wb', config: { batch_size: 8, sae: { k: 4 } } });
  const logs = calls.filter((c) => c.call === 'log');
  expect(logs.map((c) => c.step)).toEqual([2, 4, 6]);
  expect(logs[0]!.metrics).toHaveProperty('fvu/layers.0');
  expect(calls[calls.length - 1]!.call).toBe('finish');
});
