/**
 * `evaluate()`: how good coders are inside the model, in one pass over the data. For each
 * batch the clean forward encodes every coder's activations once (reconstruction sums) and
 * keeps the reconstructions; then, with --splice each, one forward per coder with its
 * hookpoint spliced and one with it zeroed; with --splice all, every hookpoint spliced (and
 * zeroed) at once. All of a batch's forwards are one bridge call; the sums stay on the
 * device and are read once at the end.
 */
import { bundleGet, hookWidths, hooksRun, modelModules, type AfterSpec, type HookSpec, type PassSpec, type PyObject, type Tensor } from '../bridge/ops.js';
import { SparsifyError } from '../bridge/errors.js';
import { numLatentsFor } from '../config/sparse-coder.js';
import type { SparseCoder } from '../coder/sparse-coder.js';
import type { TokenDataset } from '../data/dataset.js';
import { compileProgram, runProgram } from '../kernels/index.js';
import type { TrainableModel } from '../model/language-model.js';
import * as E from './programs.js';
import type { CoderEval, DensityHistogram, EvalReport, SpliceMetrics } from './report.js';

export type SpliceMode = 'each' | 'all' | 'both' | 'none';

/** A coder to evaluate, under its name in the report. */
export interface EvalCoder {
  /** A coder directory's name: the hookpoint, or `hookpoint/seedN`. */
  name: string;
  hookpoint: string;
  coder: SparseCoder;
  /** Parameters to use instead of the coder's own (a trainer's schedule-free x). */
  params?: PyObject;
  /** The k to encode with instead of the configured one (a trainer's decayed k). */
  k?: number;
  /** Where it was loaded from, for the report. */
  path?: string | null;
}

export interface EvaluateOptions {
  /** Rows [start, end) of the dataset; default all. */
  rows?: readonly [number, number];
  /** Sequences per batch (default 8). */
  batchSize?: number;
  /** Spliced-in metrics per hookpoint ('each', the default), all at once, both, or none. */
  splice?: SpliceMode;
  /** Token ids left out of every metric, besides the model's special tokens. */
  excludeTokens?: readonly number[];
  /** The special tokens (default the model's BOS/EOS/pad ids). */
  specialTokenIds?: readonly number[];
  /** Progress over the batches. */
  onBatch?: (done: number, total: number) => void;
  /** Each coder's per-latent firing density (share of evaluated tokens), when wanted. */
  onDensity?: (name: string, density: Float64Array) => void;
  /** What the report says was evaluated. */
  describe?: { model?: string; dataset?: string; split?: string | null };
}

/** The hookpoint a coder's name in a run stands for (`layers.3/k64-ef16/seed0` -> `layers.3`). */
export function hookpointOf(name: string): string {
  return name.split('/')[0]!;
}

/** log10 firing-density bins from 1e-8 to 1, half a decade each. */
const EDGES = Array.from({ length: 17 }, (_, i) => -8 + i * 0.5);

/** A log10 firing-density histogram of per-latent firing counts over `tokens`. */
export function densityHistogram(counts: readonly number[], tokens: number): DensityHistogram {
  const out = new Array<number>(EDGES.length - 1).fill(0);
  let dead = 0;
  for (const c of counts) {
    if (c === 0) {
      dead += 1;
      continue;
    }
    const x = Math.log10(c / tokens);
    const i = Math.min(out.length - 1, Math.max(0, Math.floor((x - EDGES[0]!) / 0.5)));
    out[i]! += 1;
  }
  return { edges: EDGES, counts: out, dead };
}

function spliceMetrics(ceClean: number, ceSpliced: number, ceZero: number, klSpliced: number, klZero: number): SpliceMetrics {
  return {
    ce_clean: ceClean,
    ce_spliced: ceSpliced,
    ce_zero: ceZero,
    ce_delta: ceSpliced - ceClean,
    ce_loss_recovered: (ceZero - ceSpliced) / (ceZero - ceClean),
    kl_spliced: klSpliced,
    kl_zero: klZero,
    kl_score: (klZero - klSpliced) / klZero,
  };
}

/**
 * Evaluate coders on a model over rows of a dataset (see README "Evaluating coders").
 *
 * @example
 * const report = await evaluate(model, await SparseCoder.loadMany('checkpoints/default'), data, { rows: [900, 1000] });
 * console.log(report.coders['layers.0']!.explained_variance);
 */
export async function evaluate(
  model: TrainableModel,
  coders: Map<string, SparseCoder> | readonly EvalCoder[],
  dataset: TokenDataset,
  options: EvaluateOptions = {},
): Promise<EvalReport> {
  const started = Date.now();
  const list: EvalCoder[] = coders instanceof Map ? [...coders].map(([name, coder]) => ({ name, hookpoint: hookpointOf(name), coder })) : [...coders];
  if (list.length === 0) throw new SparsifyError('evaluate: no coders given');
  const warnings: string[] = [];
  let splice = options.splice ?? 'each';
  if (splice !== 'none' && !model.lmHead) {
    warnings.push('the model has no language-model head with loaded weights: ce and kl metrics left out (reconstruction metrics only)');
    splice = 'none';
  }
  const [start, end] = options.rows ?? [0, dataset.numRows];
  if (!(end > start) || start < 0 || end > dataset.numRows) {
    throw new SparsifyError(`no rows to evaluate: rows ${start}..${end} of a dataset of ${dataset.numRows}`);
  }
  const batchSize = options.batchSize ?? 8;

  // The coders fit the model: their hookpoints exist and have their width.
  const moduleNames = new Set((await modelModules(model.model)).map((m) => m.name));
  const missing = [...new Set(list.map((c) => c.hookpoint))].filter((h) => !moduleNames.has(h));
  if (missing.length) throw new SparsifyError(`the model has no module ${missing.map((h) => `'${h}'`).join(', ')} (a coder's hookpoint)`);
  const widths = await hookWidths(model.model, [...new Set(list.map((c) => c.hookpoint))]);
  for (const c of list) {
    const w = widths[c.hookpoint]!;
    const width = c.coder.cfg.transcode ? (w.input ?? w.output) : w.output;
    if (c.coder.dIn !== width) throw new SparsifyError(`coder ${c.name} has d_in=${c.coder.dIn} but '${c.hookpoint}' of this model has width ${width}`);
  }

  // Programs and sums.
  const keep = splice === 'each' || splice === 'both';
  const rt = model.model.runtime;
  const params = (c: EvalCoder): PyObject => c.params ?? c.coder.params;
  const sums = new Map<string, PyObject>();
  for (const c of list) sums.set(c.name, (await runProgram<{ sums: PyObject }>(E.coderSumsProgram(), { params: params(c) })).sums);
  const like = await bundleGet(params(list[0]!), 'b_dec');
  const modelSums = (await runProgram<{ sums: PyObject }>(E.modelSumsProgram(), { like })).sums;
  const sumTensor = (bundle: PyObject, name: string): Promise<Tensor> => bundleGet(bundle, name);
  const patched = splice === 'none' ? '' : await compileProgram(E.patchedLogitsProgram(), rt);

  const clean: PassSpec = {
    hooks: await Promise.all(
      list.map(async (c): Promise<HookSpec> => ({
        key: c.name,
        module: c.hookpoint,
        program: await compileProgram(E.encodeHookProgram(c.coder.structure, keep), rt),
        args: { params: params(c), k: c.k ?? c.coder.cfg.k, sums: sums.get(c.name)!, keep_key: `recon:${c.name}` },
      })),
    ),
    logits: splice === 'none' ? null : { key: 'clean', program: await compileProgram(E.cleanLogitsProgram(), rt), args: { sums: modelSums } },
  };
  const passes: PassSpec[] = [clean];
  if (keep) {
    const kept = await compileProgram(E.spliceKeptHookProgram(), rt);
    const zero = await compileProgram(E.zeroHookProgram(), rt);
    for (const c of list) {
      const s = sums.get(c.name)!;
      passes.push({
        hooks: [{ key: c.name, module: c.hookpoint, program: kept, replace: true, args: { keep_key: `recon:${c.name}` } }],
        logits: { key: c.name, program: patched, args: { ce_sum: await sumTensor(s, 'ce_spliced'), kl_sum: await sumTensor(s, 'kl_spliced') } },
      });
      passes.push({
        hooks: [{ key: c.name, module: c.hookpoint, program: zero, replace: true, args: {} }],
        logits: { key: c.name, program: patched, args: { ce_sum: await sumTensor(s, 'ce_zero'), kl_sum: await sumTensor(s, 'kl_zero') } },
      });
    }
  }
  if (splice === 'all' || splice === 'both') {
    const first = new Map<string, EvalCoder>();
    for (const c of list) if (!first.has(c.hookpoint)) first.set(c.hookpoint, c);
    if (first.size < list.length) warnings.push(`--splice all replaces each hookpoint by its first coder (${[...first.values()].map((c) => c.name).join(', ')})`);
    const zero = await compileProgram(E.zeroHookProgram(), rt);
    const live: HookSpec[] = await Promise.all(
      [...first.values()].map(async (c) => ({
        key: c.name,
        module: c.hookpoint,
        program: await compileProgram(E.spliceLiveHookProgram(c.coder.structure), rt),
        replace: true,
        args: { params: params(c), k: c.k ?? c.coder.cfg.k },
      })),
    );
    passes.push({ hooks: live, logits: { key: 'all', program: patched, args: { ce_sum: await sumTensor(modelSums, 'ce_spliced_all'), kl_sum: await sumTensor(modelSums, 'kl_spliced_all') } } });
    passes.push({
      hooks: [...first.values()].map((c) => ({ key: c.name, module: c.hookpoint, program: zero, replace: true, args: {} })),
      logits: { key: 'all', program: patched, args: { ce_sum: await sumTensor(modelSums, 'ce_zero_all'), kl_sum: await sumTensor(modelSums, 'kl_zero_all') } },
    });
  }

  // The data pass: one bridge call per batch.
  const excluded = [...new Set([...(options.specialTokenIds ?? model.specialTokenIds ?? []), ...(options.excludeTokens ?? [])])].sort((a, b) => a - b);
  const total = Math.ceil((end - start) / batchSize);
  for (let b = 0; b < total; b++) {
    const a = start + b * batchSize;
    await hooksRun({ model: model.model, rows: dataset.rows, batches: [[a, Math.min(a + batchSize, end)]], passes, device: model.device, excludeTokens: excluded, vocabSize: model.vocabSize });
    options.onBatch?.(b + 1, total);
  }

  // Read every sum with one device sync.
  const after: AfterSpec[] = [
    ...(await Promise.all(list.map(async (c) => ({ key: c.name, program: await compileProgram(E.readSumsProgram(E.CODER_SUMS), rt), args: { sums: sums.get(c.name)! } })))),
    { key: '__model__', program: await compileProgram(E.readSumsProgram(E.MODEL_SUMS), rt), args: { sums: modelSums } },
  ];
  const read = (await hooksRun({ model: model.model, rows: dataset.rows, batches: [], passes: [], device: model.device, after })).metrics;
  const m = read.__model__ as Record<string, number>;
  const positions = m.positions!;
  const report: EvalReport['coders'] = {};
  let tokens = 0;
  for (const c of list) {
    const r = read[c.name] as Record<string, number>;
    const n = r.tokens!;
    tokens = Math.max(tokens, n);
    const counts = await (await bundleGet(sums.get(c.name)!, 'fire_counts')).toNumbers();
    const density = Float64Array.from(counts, (x) => x / n);
    options.onDensity?.(c.name, density);
    const coderEval: CoderEval = {
      hookpoint: c.hookpoint,
      path: c.path ?? null,
      d_in: c.coder.dIn,
      num_latents: numLatentsFor(c.coder.cfg, c.coder.dIn),
      k: c.k ?? c.coder.cfg.k,
      transcode: c.coder.cfg.transcode,
      tokens: n,
      fvu: r.fvu_sum! / total,
      explained_variance: 1 - r.sq_err! / (r.sum_y2! - r.sum_y_norm2! / n),
      l0: r.l0! / n,
      dead_frac: density.filter((d) => d === 0).length / density.length,
      dense_frac_1pct: density.filter((d) => d > 0.01).length / density.length,
      dense_frac_10pct: density.filter((d) => d > 0.1).length / density.length,
      density_histogram: densityHistogram(counts, n),
      splice: keep ? spliceMetrics(m.ce_clean! / positions, r.ce_spliced! / positions, r.ce_zero! / positions, r.kl_spliced! / positions, r.kl_zero! / positions) : null,
    };
    report[c.name] = coderEval;
  }
  const spliceAll =
    splice === 'all' || splice === 'both' ? spliceMetrics(m.ce_clean! / positions, m.ce_spliced_all! / positions, m.ce_zero_all! / positions, m.kl_spliced_all! / positions, m.kl_zero_all! / positions) : null;
  return {
    version: 1,
    model: options.describe?.model ?? '',
    dataset: options.describe?.dataset ?? '',
    split: options.describe?.split ?? null,
    ctx_len: dataset.ctxLen,
    rows: { start, end, of: dataset.numRows },
    tokens,
    positions: Math.round(positions),
    splice,
    excluded_token_ids: excluded,
    coders: report,
    splice_all: spliceAll,
    warnings,
    seconds: (Date.now() - started) / 1000,
    finished: new Date().toISOString(),
  };
}
