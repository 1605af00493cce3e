// What a new user runs first, as child processes of the real CLI: cache -> train -> eval on
// the bundled default (each recording what it did truly), the cache's lock, interrupted
// writes and file modes, and --max_tokens meaning at most.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { exited, spawnTs, waitForLine } from '../helpers/processes.js';
import { EvalReportSchema } from '../../src/eval/index.js';
import { bundledDefault } from '../../src/model/index.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-first-run-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const env = { ...process.env, HF_HUB_OFFLINE: '1', WANDB_MODE: 'disabled' };

/** The CLI as a child process, with its output collected. */
function cli(args: string[]): ChildProcess & { output: () => string } {
  const child = spawnTs('test/fixtures/cli.ts', args, env) as ChildProcess & { output: () => string };
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  child.output = () => text;
  return child;
}

async function run(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = cli(args);
  const { code } = await exited(child);
  return { code, out: child.output() };
}

const index = (dir: string): Record<string, unknown> => JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as Record<string, unknown>;

describe('cache -> train -> eval', () => {
  it('the bundled default end to end: the cache holds out a tenth, the run records what it trained on, eval finds unseen rows', async () => {
    const acts = join(work, 'acts');
    const cached = await run(['cache', '--out', acts, '--max_tokens', '2100', '--hookpoints', 'layers.1']);
    expect([cached.code, cached.out]).toEqual([0, expect.stringContaining('over 16 rows (2048 tokens)')]);
    // --max_tokens is at most: 2100 tokens hold 16 whole rows of 128, not 17.
    const i = index(acts);
    expect([i.rows, i.tokens, i.ctx_len, i.holdout, i.text_column]).toEqual([16, 2048, 128, 0.1, 'text']);
    expect(i.dataset_rows).toBeGreaterThan(16);
    // Shards get the mode every other file gets (the umask's), not safetensors' 0600.
    const shard = readdirSync(acts).find((n) => n.startsWith('shard-'))!;
    expect(statSync(join(acts, shard)).mode & 0o777).toBe(0o666 & ~process.umask());

    const trained = await run(['--from_cache', acts, '--holdout', '0.25', '--save_dir', work, '--run_name', 'fc', '--batch_size', '4', '-k', '8', '--expansion_factor', '2']);
    expect([trained.code, trained.out]).toEqual([0, expect.stringContaining('12 rows of 128 tokens')]);
    const config = JSON.parse(readFileSync(join(work, 'fc', 'config.json'), 'utf8')) as Record<string, unknown>;
    expect([config.model, config.dataset, config.ctx_len, config.max_examples, config.split, config.shuffle_seed]).toEqual([bundledDefault.model, bundledDefault.dataset, 128, 12, 'train', 42]);

    const evaluated = await run(['eval', join(work, 'fc'), '--max_tokens', '512', '--json']);
    expect(evaluated.code).toBe(0);
    const report = EvalReportSchema.parse(JSON.parse(evaluated.out.trim().split('\n').pop()!));
    // The first row after the 12 it trained on, 4 rows of 128 tokens.
    expect([report.rows.start, report.rows.end, report.ctx_len]).toEqual([12, 16, 128]);
  }, 180_000);

  it('--max_tokens below one row is a one-line error, before anything is loaded', async () => {
    const { code, out } = await run(['cache', '--out', join(work, 'tiny'), '--max_tokens', '100']);
    expect(code).toBe(1);
    expect(out.trim().split('\n').filter((l) => l.startsWith('sparsify'))).toEqual(['sparsify cache: --max_tokens 100 is less than one row of 128 tokens; give at least 128']);
  }, 60_000);
});

describe('sparsify cache into one folder', () => {
  it('a second cache into the same --out stops at once naming the first; Ctrl-C leaves no temporary file, and the rerun finishes', async () => {
    const acts = join(work, 'busy');
    const args = ['cache', '--out', acts, '--max_tokens', '32768', '--shard_mb', '0.3', '--batch_size', '2'];
    const first = cli(args);
    await waitForLine(first, /Caching 4 hookpoint/, 60_000);
    const second = await run(args);
    expect(second.code).toBe(1);
    expect(second.out.trim().split('\n').pop()).toMatch(new RegExp(`^sparsify cache: ${acts} is in use by process ${first.pid} \\(since .*\\); another \`sparsify cache\` is writing it; wait for it to finish, or choose another --out$`));
    expect(second.out).not.toContain('Loading model');
    // Interrupt the first mid-write: the shards it finished stay, nothing half-written does.
    await new Promise((r) => setTimeout(r, 1000));
    first.kill('SIGINT');
    expect((await exited(first)).code).not.toBe(0);
    expect(first.output()).toContain('Interrupted: the shards written so far are kept');
    expect(existsSync(join(acts, '.lock'))).toBe(false);
    const again = await run(args);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/Resuming the cache in .* after \d+ whole shard\(s\)/);
    expect(again.out).toMatch(/Done: 32768 tokens, .* \(\d+ tokens\/s, .* MB\/s; resumed after \d+ shard\(s\), this run wrote \d+ tokens\)/);
    expect(index(acts).complete).toBe(true);
    expect(readdirSync(acts).filter((n) => n.includes('.tmp') || n === '.lock')).toEqual([]);
  }, 180_000);

  it('--out naming a file, or a folder of other files, is refused before the model loads; the file is left as it was', async () => {
    const file = join(work, 'a-file');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, 'keep me');
    const asFile = await run(['cache', '--out', file]);
    expect(asFile.code).toBe(1);
    expect(asFile.out.trim()).toBe(`sparsify cache: --out ${file} is a file; give a folder (a new one, or an unfinished cache to resume)`);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
    const other = join(work, 'other');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'mine');
    const full = await run(['cache', '--out', other]);
    expect([full.code, full.out.trim()]).toEqual([1, `sparsify cache: --out ${other} holds other files (notes.txt); give a new or empty folder, or an unfinished cache to resume`]);
    expect(existsSync(join(other, 'index.json'))).toBe(false);
  }, 60_000);
});
