// Installing as a dependency: the postinstall says what it does and where, and can be skipped.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './helpers/processes.js';

const setup = (env: Record<string, string>): string => {
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'setup-python.mjs')], { env: { ...process.env, ...env }, encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stderr;
};

describe('the Python set-up', () => {
  it('SPARSIFY_SKIP_PYTHON_SETUP skips it and says how to do it later', () => {
    const out = setup({ SPARSIFY_SKIP_PYTHON_SETUP: '1' });
    expect(out).toContain('SPARSIFY_SKIP_PYTHON_SETUP is set: no Python environment set up');
    expect(out).toContain('scripts/setup-python.mjs');
  });

  it('says where the environment is when it is up to date', () => {
    expect(setup({})).toContain(`Python environment up to date (${join(repoRoot, '.venv')})`);
  });

  it('with SPARSIFY_PYTHON, checks that interpreter and creates no .venv', () => {
    const python = join(repoRoot, '.venv', 'bin', 'python');
    expect(setup({ SPARSIFY_PYTHON: python })).toMatch(new RegExp(`using SPARSIFY_PYTHON=${python} \\(torch .*\\); no .venv created`));
  });
});
