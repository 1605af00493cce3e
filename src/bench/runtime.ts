/**
 * The benchmarks' runtime: the shared one, started with the benchmarks' own ops
 * (python/bench/bench_ops.py) and, where the reference library is here, with it importable
 * (its coder is timed side by side). Call before anything starts the runtime.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { packageRoot, pythonRuntimeDir } from '../bridge/paths.js';
import { referencePath } from './reference.js';

export function useBenchRuntime(): void {
  const ops = join(pythonRuntimeDir, 'bench', 'bench_ops.py');
  const loaded = (process.env.SPARSIFY_RUNTIME_EXTENSIONS ?? '').split(delimiter).filter(Boolean);
  if (!loaded.includes(ops)) process.env.SPARSIFY_RUNTIME_EXTENSIONS = [...loaded, ops].join(delimiter);
  const ref = referencePath();
  if (ref) {
    const site = join(packageRoot, '.reference-site');
    process.env.PYTHONPATH = [process.env.PYTHONPATH, ref, existsSync(site) ? site : ''].filter(Boolean).join(delimiter);
  }
}
