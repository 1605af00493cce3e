// The CLI's mistakes that cost a second: checked before Python starts or a model loads, each
// a one-line error naming the value and what to do (no stack trace).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readdirSync, unlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, buildCommand } from '../../src/cli/index.js';
import { closeRuntime, runningRuntime } from '../../src/bridge/index.js';
import { makeTinyLM } from '../helpers/python.js';

let work: string;
let modelDir: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-preflight-'));
  modelDir = await makeTinyLM(join(work, 'lm'));
  closeRuntime();
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

/** Run the CLI in this process; its exit code and what it wrote to stderr. */
async function run(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main([...args, '--log_to_wandb', 'false']);
    return { code, err };
  } finally {
    process.stderr.write = write;
  }
}

/** Before Python: the error, alone on one line, and no runtime started. */
async function refusedEarly(args: string[], message: string | RegExp): Promise<void> {
  const { code, err } = await run(args);
  expect(code).not.toBe(0);
  const lines = err.trim().split('\n');
  expect(lines).toHaveLength(1);
  if (typeof message === 'string') expect(lines[0]).toBe(`sparsify: ${message}`);
  else expect(lines[0]).toMatch(message);
  expect(runningRuntime()).toBeUndefined();
}

describe('checked before Python starts', () => {
  it('a local model or dataset path that does not exist', async () => {
    await refusedEarly(['./no-such-model'], 'model: no such file or directory: ./no-such-model');
    await refusedEarly([modelDir, join(work, 'missing.jsonl')], `dataset: no such file or directory: ${join(work, 'missing.jsonl')}`);
    await refusedEarly([modelDir, modelDir, '--finetune', '~/no/such/coders'], 'finetune: no such file or directory: ~/no/such/coders');
  });

  it('a --save_dir that is a file, or where nothing can be written', async () => {
    const asFile = join(work, 'a-file');
    writeFileSync(asFile, '');
    await refusedEarly([modelDir, '--save_dir', asFile], `--save_dir ${asFile}: ${asFile} is a file, not a directory`);
    // A read-only mount where this machine allows one, else a read-only system folder.
    const ro = join(work, 'ro');
    mkdirSync(ro);
    let mounted = false;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro', 'tmpfs', ro], { stdio: 'ignore' });
      mounted = true;
    } catch {
      // no permission to mount
    }
    try {
      const target = mounted ? join(ro, 'checkpoints') : '/sys/fs/sparsify-checkpoints';
      await refusedEarly([modelDir, '--save_dir', target], new RegExp(`^sparsify: --save_dir ${target}: cannot write in ${mounted ? ro : '/sys/fs'} \\((EROFS|EACCES|EPERM)\\)$`));
    } finally {
      if (mounted) execFileSync('umount', [ro]);
    }
  });

  it('a run directory that holds a run, without --resume or --overwrite', async () => {
    const runDir = join(work, 'runs', 'taken');
    mkdirSync(runDir, { recursive: true });
    writeFileSync(join(runDir, 'config.json'), '{}');
    await refusedEarly([modelDir, '--save_dir', join(work, 'runs'), '--run_name', 'taken'], `${runDir} already holds a run; pass --resume to continue it, or --overwrite to move it aside and start a new one (or choose another --run_name)`);
  });

  it('--resume without a checkpoint', async () => {
    const runDir = join(work, 'runs', 'nothing');
    await refusedEarly([modelDir, '--save_dir', join(work, 'runs'), '--run_name', 'nothing', '--resume'], `cannot resume: ${join(runDir, 'state.json')} not found (no checkpoint in ${runDir}); start without --resume`);
  });

  it('config values: --data_args, k against --num_latents, repeated seeds, a run name outside save_dir', async () => {
    await refusedEarly([modelDir, '--data_args', 'name'], 'data_args: "name" is not key=value (expected "k=v,k2=v2")');
    await refusedEarly([modelDir, '-k', '100', '--num_latents', '64'], '-k: k=100 is larger than num_latents=64; use k <= 64');
    await refusedEarly([modelDir, '--init_seeds', '0', '0'], /init_seeds: seed 0 is given twice/);
    await refusedEarly([modelDir, '--run_name', '../outside'], /run_name: "..\/outside" would leave save_dir/);
  });
});

describe('--help', () => {
  it('states each default once, and the bundled default run', () => {
    const help = buildCommand().helpInformation();
    const layers = help.split('\n').filter((l) => l.includes('--layers'))[0]!;
    expect(layers.match(/default/g)).toHaveLength(1);
    expect(help).toContain('(default: all)');
    expect(help.replace(/\s+/g, ' ')).toContain('--ctx_len 128 --batch_size 16 --save_every 25 --run_name default --holdout 0.1 unless given');
  });
});

describe('pre-tokenized data', () => {
  it('a model folder without tokenizer files trains on a token file: no tokenizer is loaded', async () => {
    const bare = join(work, 'bare-llama');
    await makeTinyLM(bare, { arch: 'llama' });
    closeRuntime();
    for (const f of readdirSync(bare)) if (/tokenizer|special_tokens|vocab|merges/.test(f)) unlinkSync(join(bare, f));
    const ids = Uint16Array.from({ length: 16 * 32 }, (_, i) => (i * 7) % 150);
    writeFileSync(join(work, 'ids.bin'), Buffer.from(ids.buffer));
    const { code, err } = await run([bare, join(work, 'ids.bin'), '--ctx_len', '16', '--batch_size', '8', '-k', '2', '--num_latents', '32', '--save_dir', join(work, 'runs'), '--run_name', 'bare']);
    expect([code, err]).toEqual([0, expect.stringContaining('Done: 4 steps.')]);
    expect(existsSync(join(work, 'runs', 'bare', 'layers.1', 'sae.safetensors'))).toBe(true);
  });
});
