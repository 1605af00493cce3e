#!/usr/bin/env node
// npm install: create/refresh the Python environment, then build the TypeScript.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const setup = await import('./setup-python.mjs');
const ok = await setup.ensurePythonEnv({ root });
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (existsSync(join(root, 'src')) && existsSync(tsc)) {
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });
}
if (!ok) process.exitCode = 0; // the JS side still installs; the runtime explains what to run
