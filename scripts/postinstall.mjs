#!/usr/bin/env node
// npm install: create/refresh the Python environment, then build the TypeScript and the explorer app.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const setup = await import('./setup-python.mjs');
const ok = await setup.ensurePythonEnv({ root });
// In a clone (sources and dev tools present): build dist/ and the explorer app.
if (existsSync(join(root, 'src')) && existsSync(join(root, 'node_modules', 'typescript')) && existsSync(join(root, 'node_modules', 'esbuild'))) {
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit', cwd: root });
}
if (!ok) process.exitCode = 0; // the JS side still installs; the runtime explains what to run
