#!/usr/bin/env node
/**
 * Create the package's Python environment (.venv) from requirements.txt, skipping the work
 * when it is already up to date. With SPARSIFY_PYTHON set, check that interpreter instead;
 * with SPARSIFY_SKIP_PYTHON_SETUP=1, do nothing. Installs only the Python packages, so it is
 * also the repair command the runtime suggests.
 * Usage: node scripts/setup-python.mjs [--force]
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const say = (msg) => process.stderr.write(`sparsify: ${msg}\n`);

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', ...opts });
}

/** The Python version of `python`, or undefined when it does not run. */
function pythonVersion(python) {
  const r = run(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])']);
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function checkImports(python) {
  const r = run(python, ['-c', 'import torch, transformers, safetensors; print(torch.__version__)']);
  return r.status === 0 ? { ok: true, torch: r.stdout.trim() } : { ok: false, error: (r.stderr || r.stdout).trim().split('\n').pop() };
}

function findBasePython() {
  for (const candidate of [process.env.SPARSIFY_BASE_PYTHON, 'python3', 'python'].filter(Boolean)) {
    const v = pythonVersion(candidate);
    if (v && Number(v.split('.')[1]) >= 10 && v.startsWith('3.')) return candidate;
  }
  return undefined;
}

export async function ensurePythonEnv({ root, force = false } = {}) {
  root ??= join(dirname(fileURLToPath(import.meta.url)), '..');
  if (['1', 'true', 'yes'].includes((process.env.SPARSIFY_SKIP_PYTHON_SETUP ?? '').toLowerCase())) {
    say(`SPARSIFY_SKIP_PYTHON_SETUP is set: no Python environment set up; set SPARSIFY_PYTHON=/path/to/python (with torch, transformers, datasets, safetensors), or run \`node ${join(root, 'scripts', 'setup-python.mjs')}\` later`);
    return true;
  }
  if (process.env.SPARSIFY_PYTHON) {
    const python = process.env.SPARSIFY_PYTHON;
    const check = checkImports(python);
    if (check.ok) say(`using SPARSIFY_PYTHON=${python} (torch ${check.torch}); no .venv created`);
    else say(`SPARSIFY_PYTHON=${python} cannot import torch/transformers/safetensors (${check.error}); install them there, or unset SPARSIFY_PYTHON and run \`npm install\` again`);
    return check.ok;
  }
  const venv = join(root, '.venv');
  const venvPython = join(venv, 'bin', 'python');
  const requirements = join(root, 'requirements.txt');
  const stamp = join(venv, '.sparsify-requirements');
  const wanted = createHash('sha256').update(readFileSync(requirements)).digest('hex');
  if (!force && existsSync(venvPython) && existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted && checkImports(venvPython).ok) {
    say(`Python environment up to date (${venv})`);
    return true;
  }
  say(
    `setting up the Python runtime sparsify computes in: a virtual environment at ${venv} with the packages of ${requirements} ` +
      '(torch, transformers, datasets, safetensors: 1 to 2 GB from your pip index). To skip it, set SPARSIFY_SKIP_PYTHON_SETUP=1; ' +
      'to use a Python of your own, set SPARSIFY_PYTHON=/path/to/python.',
  );
  const base = findBasePython();
  if (!base) {
    say('no Python 3.10+ found (tried python3, python); install one, then run `npm run setup:python`, or set SPARSIFY_PYTHON=/path/to/python with torch installed');
    return false;
  }
  if (!existsSync(venvPython)) {
    say(`creating ${venv} with ${base}`);
    const r = run(base, ['-m', 'venv', venv], { stdio: 'inherit' });
    if (r.status !== 0) {
      rmSync(venv, { recursive: true, force: true });
      say(`\`${base} -m venv ${venv}\` failed; install the venv module (e.g. apt-get install python3-venv) and run \`npm run setup:python\``);
      return false;
    }
  }
  say(`installing Python packages from requirements.txt into ${venv}`);
  // Bounded retries/timeouts: an unreachable index must fail in seconds, not minutes.
  const pip = run(venvPython, ['-m', 'pip', 'install', '--disable-pip-version-check', '--retries', '0', '--timeout', '15', '-q', '-r', requirements], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const check = checkImports(venvPython);
  if (pip.status !== 0 || !check.ok) {
    const errLines = (pip.stderr ?? '').split('\n').filter((l) => l && !l.startsWith('WARNING: Location')).slice(-5).join('\n');
    say(`pip could not install requirements.txt into ${venv}${errLines ? `:\n${errLines}` : ''}\nfix the package index (pip config) and run \`npm run setup:python\`, or set SPARSIFY_PYTHON=/path/to/python with torch installed`);
    return false;
  }
  writeFileSync(stamp, wanted);
  say(`Python environment ready (torch ${check.torch})`);
  return true;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const ok = await ensurePythonEnv({ force: process.argv.includes('--force') });
  process.exit(ok ? 0 : 1);
}
