// The code base's seams, checked as text: no import cycles (TypeScript, type imports
// included, and the Python runtime), pythonia only in the bridge, ops named only in
// bridge/ops.ts, and no Python text outside the kernel compiler's op table.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/processes.js';

function files(dir: string, ext: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path, ext) : path.endsWith(ext) ? [path] : [];
  });
}

/** A cycle in `graph`, as a path of nodes, or undefined. */
function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

const src = join(repoRoot, 'src');
const tsFiles = files(src, '.ts');
const text = new Map(tsFiles.map((f) => [f, readFileSync(f, 'utf8')]));
const stripComments = (code: string): string => code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');

describe('architecture', () => {
  it('the TypeScript sources import each other without cycles (type imports included)', () => {
    const graph = new Map<string, string[]>();
    for (const [file, code] of text) {
      const deps = [...code.matchAll(/(?:import|export)[^'"]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g)].map((m) =>
        resolve(dirname(file), (m[1] ?? m[2])!).replace(/\.js$/, '.ts'),
      );
      graph.set(file, deps);
    }
    const cycle = findCycle(graph);
    expect(cycle?.map((f) => relative(src, f))).toBeUndefined();
  });

  it('the Python runtime imports each other without cycles', () => {
    const pkg = join(repoRoot, 'python', 'sparsify_runtime');
    const graph = new Map<string, string[]>();
    for (const file of files(pkg, '.py')) {
      const code = readFileSync(file, 'utf8');
      const deps = [...code.matchAll(/^\s*from \.(\w*) import ([\w, ]+)/gm)].flatMap((m) =>
        m[1] ? [join(pkg, `${m[1]}.py`)] : m[2]!.split(',').map((n) => join(pkg, `${n.trim()}.py`)),
      );
      graph.set(file, deps);
    }
    const cycle = findCycle(graph);
    expect(cycle?.map((f) => relative(pkg, f))).toBeUndefined();
    // The core imports no op module.
    expect(graph.get(join(pkg, 'core.py'))).toEqual([]);
  });

  it('the browser app imports only itself, the payload types, the packing and uPlot (no Node, no runtime)', () => {
    const app = join(src, 'explore', 'app');
    for (const [file, code] of text) {
      if (!file.startsWith(app)) continue;
      for (const m of code.matchAll(/from\s+'([^']+)'/g)) {
        const spec = m[1]!;
        const shared = [join(src, 'explore', 'payloads.js'), join(src, 'explore', 'packing.js')];
        const ok = spec === 'uplot' || (spec.startsWith('.') && (resolve(dirname(file), spec).startsWith(app) || shared.includes(resolve(dirname(file), spec))));
        expect([relative(src, file), spec, ok]).toEqual([relative(src, file), spec, true]);
      }
    }
    expect(/^import /m.test(text.get(join(src, 'explore', 'payloads.ts'))!)).toBe(false);
    // The packing is shared with the page: it reads the payload types, nothing else.
    expect([...text.get(join(src, 'explore', 'packing.ts'))!.matchAll(/^import .*$/gm)].map((m) => m[0])).toEqual(["import type { ExamplePayload, LatentPayload } from './payloads.js';"]);
  });

  it('only the bridge imports pythonia, and only bridge/ops.ts calls runtime ops', () => {
    for (const [file, code] of text) {
      const rel = relative(src, file);
      if (/from 'pythonia'|import\('pythonia'\)/.test(code)) expect(rel.startsWith('bridge/')).toBe(true);
      if (/\.call\(\s*'[a-z_]+\.[a-z_]+'/.test(code) || /\b(rt|runtime)\.call\(/.test(stripComments(code))) expect(rel).toBe('bridge/ops.ts');
    }
  });

  it('no Python text outside the kernel compiler: domain code builds programs from typed ops', () => {
    for (const [file, code] of text) {
      const rel = relative(src, file);
      // The benchmark runs hand-written Python on purpose (it is what the kernel path is compared with).
      if (rel.startsWith('kernels/') || rel.startsWith('bridge/') || rel.startsWith('bench/')) continue;
      const body = stripComments(code);
      const python = body.match(/`[^`]*(torch\.[\w.]+\(|\bF\.[a-z_]+\(|\.code\}|\bBundle\(| is None\b)[^`]*`/);
      expect([rel, python?.[0]]).toEqual([rel, undefined]);
    }
  });
});
