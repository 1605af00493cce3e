// The terminal a user sees, on a real pseudo-terminal (util-linux `script`): quiet by default
// (one line per phase, none of the libraries' bars or warnings), every message on a line of
// its own above the progress bar, and a clean last line; --verbose lets the libraries talk.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { closeRuntime } from '../../src/bridge/index.js';
import { makeTinyLM } from '../helpers/python.js';
import { repoRoot } from '../helpers/processes.js';
import { CORPUS } from '../helpers/train-fixtures.js';

let work: string;
let modelDir: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-tty-'));
  modelDir = await makeTinyLM(join(work, 'lm'));
  closeRuntime();
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The CLI on a pseudo-terminal: what the screen shows, line by line (carriage returns and the bar's redraws applied). */
function onTerminal(args: string[]): { code: number | null; screen: string[]; raw: string } {
  // An 80-column terminal, the narrowest usual one: the whole bar line must fit it.
  const command = `stty cols 80 rows 24; ${[process.execPath, '--import', 'tsx', 'test/fixtures/cli.ts', ...args].map(quote).join(' ')}`;
  const r = spawnSync('script', ['-qfec', command, '/dev/null'], { cwd: repoRoot, env: { ...process.env, HF_HUB_OFFLINE: '1', WANDB_MODE: 'disabled' }, encoding: 'utf8' });
  // Each line as left on screen: the text after its last return to column 1 (a carriage return,
  // or the bar's cursor-to-column-1 code), colour and cursor codes dropped.
  const screen = r.stdout
    .replace(/\x1b\[1?G/g, '\r')
    .split('\n')
    .map((line) => (line.split('\r').filter((p) => p.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').length > 0).pop() ?? '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').trimEnd())
    .filter((l) => l.length > 0);
  return { code: r.status, screen, raw: r.stdout };
}

describe('on a terminal', () => {
  it('trains with one line per phase above the bar and ends on a clean summary line', () => {
    if (!existsSync('/usr/bin/script')) return;
    const runDir = join(work, 'tty');
    const { code, screen } = onTerminal([modelDir, CORPUS, '--ctx_len', '32', '--max_examples', '96', '--batch_size', '8', '-k', '4', '--expansion_factor', '2', '--save_dir', work, '--run_name', 'tty']);
    expect([code, screen.join('\n')]).toEqual([0, expect.stringContaining('Done: 12 steps.')]);
    expect(screen[screen.length - 1]).toBe(`Done: 12 steps. Coders saved to ${runDir}`);
    // No message shares a line with the bar, and the libraries stay quiet.
    for (const line of screen) if (/tok\/s/.test(line)) expect([line, line.length <= 80]).toEqual([expect.stringMatching(/^training \|.*\| ETA [^|]*$/), true]);
    expect(screen.filter((l) => /^(Loading model|Loading dataset|Training \d+ coder)/.test(l))).toHaveLength(3);
    expect(screen.join('\n')).not.toMatch(/Loading weights|Map:|Generating train split|Not logging to wandb|Writing model shards/);
  }, 120_000);

  it('--verbose lets the libraries show their own progress', () => {
    const args = [modelDir, CORPUS, '--ctx_len', '32', '--max_examples', '16', '--batch_size', '8', '-k', '4', '--expansion_factor', '2', '--save_dir', work, '--run_name', 'verbose', '--verbose'];
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/fixtures/cli.ts', ...args], { cwd: repoRoot, env: { ...process.env, HF_HUB_OFFLINE: '1', WANDB_MODE: 'disabled' }, encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([0, expect.stringMatching(/Loading weights/)]);
  }, 120_000);
});
