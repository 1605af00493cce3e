// LONG END-TO-END TEST (about a minute): `sparsify` with no arguments, through the built
// bin, trains on the bundled model and text offline and writes loadable checkpoints; then
// `sparsify eval checkpoints/default` evaluates them on the tenth of the text left out.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { EvalReportSchema } from '../../src/eval/index.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { exited, repoRoot } from '../helpers/processes.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-default-'));
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

it('[long e2e] `sparsify` with no model trains on the bundled default and says where the checkpoints went', { timeout: 300_000 }, async () => {
  expect(existsSync(join(repoRoot, 'dist', 'cli', 'main.js'))).toBe(true); // built by npm install
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'sparsify.js')], { cwd: work, env: { ...process.env, HF_HUB_OFFLINE: '1', WANDB_MODE: 'disabled' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const { code } = await exited(child);
  expect([code, out]).toEqual([0, expect.stringContaining('Coders saved to')]);
  const runDir = join(work, 'checkpoints', 'default');
  expect(out).toContain(`Coders saved to ${runDir}`);
  const coders = await SparseCoder.loadMany(runDir);
  expect([...coders.keys()]).toEqual(['layers.0', 'layers.1', 'layers.2', 'layers.3']);
  expect(coders.get('layers.0')!.dIn).toBe(128);
  // Training made progress: the last logged fvu is well below the first.
  const lines = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  expect(lines[lines.length - 1]!['fvu/layers.1']).toBeLessThan(lines[0]!['fvu/layers.1']! * 0.8);

  // A second plain run refuses to mix with the first.
  const again = spawn(process.execPath, [join(repoRoot, 'bin', 'sparsify.js')], { cwd: work, env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let againOut = '';
  again.stderr.on('data', (d: Buffer) => (againOut += d.toString()));
  expect((await exited(again)).code).toBe(1);
  expect(againOut).toContain(`${runDir} already holds a run; pass --resume to continue it, or --overwrite`);

  // Evaluation on the held-out tenth, offline, with the run's model and text by default.
  const ev = spawn(process.execPath, [join(repoRoot, 'bin', 'sparsify.js'), 'eval', 'checkpoints/default'], { cwd: work, env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let table = '';
  let evErr = '';
  ev.stdout.on('data', (d: Buffer) => (table += d.toString()));
  ev.stderr.on('data', (d: Buffer) => (evErr += d.toString()));
  expect([(await exited(ev)).code, evErr]).toEqual([0, expect.stringContaining('(not trained on)')]);
  expect(table).toMatch(/layers\.3 +\d\.\d{4} +\d\.\d{4} +32\.0/);
  const report = EvalReportSchema.parse(JSON.parse(readFileSync(join(runDir, 'eval.json'), 'utf8')));
  expect(report.rows.start).toBeGreaterThan(0);
  expect(report.rows.end).toBe(report.rows.of);
  for (const c of Object.values(report.coders)) {
    expect(c.explained_variance).toBeGreaterThan(0.5);
    expect(c.splice!.ce_loss_recovered).toBeGreaterThan(0.5);
  }
  expect(existsSync(join(runDir, 'density.safetensors'))).toBe(true);
});
