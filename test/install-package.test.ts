// sparsify as a dependency: the packed tarball installed into a scratch app with install
// scripts off (npm 11 runs none of a dependency's unless the app allows it), then
// `npx sparsify setup` and a training run. Without the set-up, the first command says in one
// line what to run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/processes.js';

let work: string;
let app: string;
const venvPython = join(repoRoot, '.venv', 'bin', 'python');
// An app's own environment: none of the test harness's switches, nothing of this repository's Python set-up.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SPARSIFY_') && !k.startsWith('VITEST') && k !== 'NODE_OPTIONS')) as Record<string, string>;

const npm = (args: string[], cwd: string): SpawnSyncReturns<string> => spawnSync('npm', args, { cwd, env: { ...env, npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' }, encoding: 'utf8' });
const npx = (args: string[]): SpawnSyncReturns<string> => spawnSync('npx', ['sparsify', ...args], { cwd: app, env: { ...env, HF_HUB_OFFLINE: '1', WANDB_MODE: 'disabled' }, encoding: 'utf8' });

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-package-'));
  const packed = npm(['pack', '--pack-destination', work, '--silent'], repoRoot);
  expect(packed.status).toBe(0);
  const tarball = join(work, packed.stdout.trim().split('\n').pop()!);
  app = join(work, 'app');
  spawnSync('mkdir', [app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', version: '1.0.0', private: true, type: 'module' }));
  const installed = npm(['install', tarball, '--ignore-scripts', '--prefer-offline', '--no-audit', '--loglevel', 'error'], app);
  expect([installed.status, installed.stderr]).toEqual([0, expect.any(String)]);
}, 240_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('installed as a dependency, install scripts off', () => {
  it('has no Python environment yet, and the first command says what to run', () => {
    expect(existsSync(join(app, 'node_modules', 'sparsify', '.venv'))).toBe(false);
    const r = npx([]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n').pop()).toMatch(/^sparsify: no Python environment for sparsify: run `npx sparsify setup` \(it creates .*node_modules\/sparsify\/\.venv from requirements\.txt\), or `npx sparsify setup --python \/path\/to\/python` to use a Python with torch$/);
  });

  it('`npx sparsify setup --python` records the interpreter (idempotent); then the bundled default trains', () => {
    for (let i = 0; i < 2; i++) {
      const setup = npx(['setup', '--python', venvPython]);
      expect([setup.status, setup.stderr]).toEqual([0, expect.stringContaining(`using ${venvPython} (torch `)]);
    }
    expect(readFileSync(join(app, 'node_modules', 'sparsify', '.sparsify-python'), 'utf8').trim()).toBe(venvPython);
    const trained = npx(['--max_examples', '32', '--save_every', '1000']);
    expect([trained.status, trained.stderr]).toEqual([0, expect.stringContaining(`Coders saved to ${join(app, 'checkpoints', 'default')}`)]);
    expect(existsSync(join(app, 'checkpoints', 'default', 'layers.0', 'sae.safetensors'))).toBe(true);
  }, 180_000);
});
