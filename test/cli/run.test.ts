// The CLI as a process: training, progress, Ctrl-C, errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { closeRuntime } from '../../src/bridge/index.js';
import { makeTinyLM } from '../helpers/python.js';
import { exited, spawnTs, waitForLine } from '../helpers/processes.js';
import { CORPUS } from '../helpers/train-fixtures.js';

let work: string;
let modelDir: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-cli-'));
  modelDir = await makeTinyLM(join(work, 'lm'));
  closeRuntime();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function collect(child: ChildProcess): { out: () => string } {
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  return { out: () => text };
}

const cli = (args: string[]): ChildProcess => spawnTs('test/fixtures/cli.ts', args, { ...process.env, WANDB_MODE: 'disabled' });

describe('sparsify CLI', () => {
  it('trains, prints plain progress lines when not a TTY, and writes checkpoints and a metrics log', async () => {
    const child = cli([modelDir, CORPUS, '--ctx_len', '32', '--max_examples', '64', '--batch_size', '8', '--expansion_factor', '2', '-k', '4', '--save_dir', work, '--run_name', 'plain', '--log_to_wandb', 'false']);
    const log = collect(child);
    const { code } = await exited(child);
    expect([code, log.out()]).toEqual([0, expect.stringContaining('Done: 8 steps.')]);
    expect(log.out()).toMatch(/step 8\/8 \| \d+ tok\/s \| fvu \d\.\d{4} \| ETA 0s/);
    expect(log.out()).toContain(`Coders saved to ${join(work, 'plain')}`);
    expect(existsSync(join(work, 'plain', 'layers.1', 'sae.safetensors'))).toBe(true);
    expect(readFileSync(join(work, 'plain', 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(8);
    const config = JSON.parse(readFileSync(join(work, 'plain', 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ model: modelDir, ctx_len: 32, batch_size: 8, sae: { k: 4 } });
  });

  it('Ctrl-C saves a checkpoint and exits cleanly; --resume continues from it', async () => {
    const args = [modelDir, CORPUS, '--ctx_len', '16', '--max_examples', '3000', '--batch_size', '2', '--expansion_factor', '2', '-k', '4', '--save_dir', work, '--run_name', 'sigint', '--log_to_wandb', 'false'];
    const child = cli(args);
    const log = collect(child);
    await waitForLine(child, /step 1\//);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGINT');
    const { code } = await exited(child);
    expect(log.out()).toContain('Interrupted: saving a checkpoint before exiting');
    expect(log.out()).toMatch(/Checkpoint saved to .*sigint at step \d+/);
    expect(code).toBe(130);
    const state = JSON.parse(readFileSync(join(work, 'sigint', 'state.json'), 'utf8')) as { global_step: number };
    expect(state.global_step).toBeGreaterThan(0);
    expect(state.global_step).toBeLessThan(1500);
    const resumed = cli([...args, '--resume', '--max_examples', '3000']);
    const rlog = collect(resumed);
    await waitForLine(resumed, new RegExp(`Resumed from .* at step ${state.global_step}`));
    resumed.kill('SIGINT');
    await exited(resumed);
    expect(rlog.out()).toContain('Checkpoint saved');
  });

  it('a hookpoint that matches nothing is a one-line error naming modules that exist', async () => {
    const child = cli([modelDir, CORPUS, '--ctx_len', '16', '--max_examples', '8', '--hookpoints', 'h.*.attn', '--save_dir', work]);
    const log = collect(child);
    const { code } = await exited(child);
    expect(code).toBe(1);
    expect(log.out()).toMatch(/sparsify: hookpoint pattern 'h\.\*\.attn' matches no module of the model; module names look like: embed_in, /);
    expect(log.out()).not.toContain('Traceback');
  });

  it('load_in_8bit without bitsandbytes says so clearly', async () => {
    const child = cli([modelDir, CORPUS, '--load_in_8bit', '--save_dir', work]);
    const log = collect(child);
    expect((await exited(child)).code).toBe(1);
    expect(log.out()).toContain('sparsify: load_in_8bit needs the bitsandbytes package');
  });
});
