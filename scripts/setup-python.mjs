#!/usr/bin/env node
/**
 * The package's Python environment: `npx sparsify setup` (and `setupPython()` in the API)
 * runs this, and so does the postinstall where npm allows install scripts. It creates
 * `<package>/.venv` from requirements.txt, skipping the work when it is up to date; or, with
 * `python`, checks that interpreter and records it in `<package>/.sparsify-python` to be used
 * instead. SPARSIFY_PYTHON, read at every start, overrides both; SPARSIFY_SKIP_PYTHON_SETUP=1
 * makes the postinstall do nothing. Installs only the Python packages, so it is also the repair
 * command the runtime suggests.
 * Usage: node scripts/setup-python.mjs [--force] [--python PATH]
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const defaultSay = (msg) => process.stderr.write(`sparsify: ${msg}\n`);

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', ...opts });
}

/** The Python version of `python`, or undefined when it does not run. */
function pythonVersion(python) {
  const r = run(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])']);
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const NEEDED = ['torch', 'transformers', 'datasets', 'safetensors'];

function checkImports(python, modules = NEEDED) {
  const r = run(python, ['-c', `import ${modules.join(', ')}; print(torch.__version__)`]);
  if (r.error) return { ok: false, error: r.error.message };
  return r.status === 0 ? { ok: true, torch: r.stdout.trim() } : { ok: false, error: (r.stderr || r.stdout).trim().split('\n').pop() };
}

function findBasePython() {
  for (const candidate of [process.env.SPARSIFY_BASE_PYTHON, 'python3', 'python'].filter(Boolean)) {
    const v = pythonVersion(candidate);
    if (v && Number(v.split('.')[1]) >= 10 && v.startsWith('3.')) return candidate;
  }
  return undefined;
}

/** Where an interpreter chosen with `--python` is recorded. */
export const RECORD_FILE = '.sparsify-python';

/**
 * Set up the Python environment. Options: `root` (the package), `force` (reinstall), `python`
 * (use this interpreter: checked, recorded, no .venv made), `say` (one line per step),
 * `explicit` (false, the postinstall: SPARSIFY_SKIP_PYTHON_SETUP, SPARSIFY_PYTHON and a recorded
 * interpreter are respected; true, `sparsify setup`: sets up what it is asked for). Resolves
 * true when the environment is ready.
 */
export async function ensurePythonEnv({ root, force = false, python, say = defaultSay, explicit = false } = {}) {
  root ??= join(dirname(fileURLToPath(import.meta.url)), '..');
  const setupHint = 'npx sparsify setup';
  const record = join(root, RECORD_FILE);
  if (!explicit && ['1', 'true', 'yes'].includes((process.env.SPARSIFY_SKIP_PYTHON_SETUP ?? '').toLowerCase())) {
    say(`SPARSIFY_SKIP_PYTHON_SETUP is set: no Python environment set up; run \`${setupHint}\` later (or \`node ${join(root, 'scripts', 'setup-python.mjs')}\`), or set SPARSIFY_PYTHON=/path/to/python (with torch, transformers, datasets, safetensors)`);
    return true;
  }
  const chosen = python ?? (!explicit ? process.env.SPARSIFY_PYTHON : undefined);
  if (chosen) {
    const check = checkImports(chosen);
    if (!check.ok) {
      say(`${chosen} cannot import ${NEEDED.join(', ')} (${check.error}); install them there (pip install -r ${join(root, 'requirements.txt')}), or run \`${setupHint}\` without --python to make a virtual environment`);
      return false;
    }
    if (python) {
      writeFileSync(record, `${resolve(python)}\n`);
      say(`using ${python} (torch ${check.torch}); recorded in ${record}, no .venv made (SPARSIFY_PYTHON still overrides it at every start)`);
    } else {
      say(`using SPARSIFY_PYTHON=${chosen} (torch ${check.torch}); no .venv created`);
    }
    return true;
  }
  if (explicit) {
    // `sparsify setup` without --python: the package's own environment, not an earlier choice.
    rmSync(record, { force: true });
  } else if (existsSync(record)) {
    const recorded = readFileSync(record, 'utf8').trim();
    if (checkImports(recorded).ok) {
      say(`using ${recorded} (recorded by \`${setupHint} --python\` in ${record}); no .venv made`);
      return true;
    }
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
      `to use a Python of your own, run \`${setupHint} --python /path/to/python\` or set SPARSIFY_PYTHON=/path/to/python.`,
  );
  const base = findBasePython();
  if (!base) {
    say(`no Python 3.10+ found (tried python3, python); install one, then run \`${setupHint}\`, or \`${setupHint} --python /path/to/python\` for a Python with torch installed`);
    return false;
  }
  if (!existsSync(venvPython)) {
    say(`creating ${venv} with ${base}`);
    const r = run(base, ['-m', 'venv', venv], { stdio: 'inherit' });
    if (r.status !== 0) {
      rmSync(venv, { recursive: true, force: true });
      say(`\`${base} -m venv ${venv}\` failed; install the venv module (e.g. apt-get install python3-venv) and run \`${setupHint}\``);
      return false;
    }
  }
  say(`installing Python packages from requirements.txt into ${venv} (pip's own progress follows)`);
  // Bounded retries/timeouts: an unreachable index must fail in seconds, not minutes.
  const pip = run(venvPython, ['-m', 'pip', 'install', '--disable-pip-version-check', '--retries', '0', '--timeout', '15', '--progress-bar', 'on', '-r', requirements], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const check = checkImports(venvPython);
  if (pip.status !== 0 || !check.ok) {
    const errLines = (pip.stderr ?? '').split('\n').filter((l) => l && !l.startsWith('WARNING: Location')).slice(-5).join('\n');
    say(`pip could not install requirements.txt into ${venv}${errLines ? `:\n${errLines}` : ''}\nfix the package index (pip config) and run \`${setupHint}\`, or \`${setupHint} --python /path/to/python\` for a Python with torch installed`);
    return false;
  }
  writeFileSync(stamp, wanted);
  say(`Python environment ready (torch ${check.torch})`);
  return true;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--python');
  const ok = await ensurePythonEnv({ force: args.includes('--force'), ...(at >= 0 ? { python: args[at + 1] } : {}) });
  process.exit(ok ? 0 : 1);
}
