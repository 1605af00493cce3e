/**
 * The reference library (EleutherAI/sparsify 1.3.0) trained side by side with this project in
 * the benchmarks, in its own Python process (python/bench/reference_train.py). It is never
 * shipped: a checkout of it (its sparsify/, plus the schedulefree/ and simple_parsing/ it
 * imports) is found at SPARSIFY_REFERENCE_PATH or in the ignored folder `.reference/`.
 */
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot, pythonRuntimeDir } from '../bridge/paths.js';
import type { StepReport } from '../trainer/trainer.js';

/** What the reference's run measured. */
export interface ReferenceRun {
  tokens_per_second: number;
  /** Mean fvu over the last steps, per hookpoint. */
  fvu: Record<string, number>;
  peak_memory_gib: number | null;
}

/** Where the reference is, or null when this checkout has none. */
export function referencePath(): string | null {
  const path = process.env.SPARSIFY_REFERENCE_PATH ?? join(packageRoot, '.reference');
  return existsSync(join(path, 'sparsify', '__init__.py')) ? path : null;
}

/** Train the reference on `modelDir` and the uint16 tokens in `bin` (signum, SAEs on every layer). */
export async function trainReference(options: {
  modelDir: string;
  bin: string;
  ctx: number;
  batch: number;
  warmup: number;
  steps: number;
  expansion: number;
  k: number;
  fvuSteps: number;
  out: string;
}): Promise<ReferenceRun> {
  const ref = referencePath();
  if (!ref) throw new Error('the reference library is not here: set SPARSIFY_REFERENCE_PATH to a folder holding its sparsify/, schedulefree/ and simple_parsing/');
  const o = options;
  const python = process.env.SPARSIFY_PYTHON ?? join(packageRoot, '.venv', 'bin', 'python');
  // The reference's own needs that this package's venv lacks may sit in `.reference-site/`.
  const site = join(packageRoot, '.reference-site');
  await execa(
    existsSync(python) ? python : 'python3',
    [join(pythonRuntimeDir, 'bench', 'reference_train.py'), o.modelDir, o.bin, ...[o.ctx, o.batch, o.warmup, o.steps, o.expansion, o.k, o.fvuSteps].map(String), o.out],
    { env: { PYTHONPATH: [ref, existsSync(site) ? site : '', process.env.PYTHONPATH ?? ''].filter(Boolean).join(':') }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return JSON.parse(readFileSync(o.out, 'utf8')) as ReferenceRun;
}

/** A step's fvu per hookpoint, to compare with the reference's. */
export function fvuByHookpoint(report: StepReport): Record<string, number> {
  return Object.fromEntries(Object.entries(report.metrics).map(([h, m]) => [h, m.fvu ?? NaN]));
}

/** The mean of the last `n` steps' figures, per hookpoint (as the reference's side reports them). */
export function meanOfLast(rows: Record<string, number>[], n: number): Record<string, number> {
  const last = rows.slice(-n);
  return Object.fromEntries(Object.keys(last[0] ?? {}).map((h) => [h, last.reduce((t, r) => t + r[h]!, 0) / last.length]));
}
