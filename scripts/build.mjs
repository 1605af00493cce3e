#!/usr/bin/env node
// Build: the TypeScript (tsc, into dist/), then the explorer's browser app: type-checked on its
// own (DOM types) and bundled with uPlot into one classic script, so pages open from file://
// and work offline (dist/explore-app/).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.app.json')], { stdio: 'inherit', cwd: root });
const esbuild = await import('esbuild');
const out = join(root, 'dist', 'explore-app');
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: [join(root, 'src', 'explore', 'app', 'main.ts')],
  bundle: true,
  format: 'iife',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  outfile: join(out, 'app.js'),
  logLevel: 'warning',
});
const css = [readFileSync(join(root, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'), 'utf8'), readFileSync(join(root, 'src', 'explore', 'app', 'style.css'), 'utf8')];
writeFileSync(join(out, 'app.css'), css.join('\n'));
