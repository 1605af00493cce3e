/**
 * `evaluate()`: how good coders are inside the model, in one pass over the data. For each
 * batch the clean forward encodes every coder's activations once (reconstruction sums) and
 * keeps the reconstructions; then, with --splice each, one forward per coder with its
 * hookpoint spliced and one with it zeroed; with --splice all, every hookpoint spliced (and
 * zeroed) at once. All of a batch's forwards are one bridge call; the sums stay on the
 * device and are read once at the end.
 */
import { bundleGet, hookWidths, modelModules, type PyObject, type Tensor } from '../bridge/ops.js';
import { SparsifyError } from '../bridge/errors.js';
import { numLatentsFor } from '../config/sparse-coder.js';
import type { SparseCoder } from '../coder/sparse-coder.js';
import type { TokenDataset } from '../data/dataset.js';
import { bind, runPasses, runProgram, type Pass, type PassHook } from '../kernels/index.js';
import type { TrainableModel } from '../model/language-model.js';
import { CODER_METRICS, DEVICE_SUMS, FIRE_COUNTS, SPLICE_METRICS, type ReadSums, type SpliceBase } from './metrics/index.js';
import * as E from './programs.js';
import type { EvalEncodeMode } from './programs.js';
import type { CoderEval, EvalReport, SpliceMetrics } from './report.js';

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
  /** How coders select latents (`--encode_mode`): 'auto' (the default: as inference does), 'topk' (each one's own selection) or 'threshold'. */
  encodeMode?: EvalEncodeMode;
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

/**
 * Fail unless the coders fit the model: each hookpoint is a module of it, of the coder's
 * width (a transcoder's: the module's input). One line naming the coder and both widths.
 */
export async function checkCodersFit(model: TrainableModel, coders: readonly Pick<EvalCoder, 'name' | 'hookpoint' | 'coder'>[]): Promise<void> {
  const moduleNames = new Set((await modelModules(model.model)).map((m) => m.name));
  const missing = [...new Set(coders.map((c) => c.hookpoint))].filter((h) => !moduleNames.has(h));
  if (missing.length) throw new SparsifyError(`the model has no module ${missing.map((h) => `'${h}'`).join(', ')} (a coder's hookpoint)`);
  const widths = await hookWidths(model.model, [...new Set(coders.map((c) => c.hookpoint))]);
  for (const c of coders) {
    const w = widths[c.hookpoint]!;
    const width = c.coder.cfg.transcode ? (w.input ?? w.output) : w.output;
    if (c.coder.dIn !== width) throw new SparsifyError(`coder ${c.name} has d_in=${c.coder.dIn} but '${c.hookpoint}' of this model has width ${width}`);
  }
}

/** The hookpoint a coder's name in a run stands for (`layers.3/k64-ef16/seed0` -> `layers.3`). */
export function hookpointOf(name: string): string {
  return name.split('/')[0]!;
}

export { densityHistogram } from './metrics/index.js';

/** Every splice metric from the passes' measurements. */
function spliceMetrics(base: SpliceBase): SpliceMetrics {
  return Object.fromEntries(SPLICE_METRICS.map((m) => [m.name, m.value(base)])) as SpliceMetrics;
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

  await checkCodersFit(model, list);
  const encodeMode = options.encodeMode ?? 'auto';
  if (encodeMode === 'threshold') {
    for (const c of list) {
      if ((await c.coder.threshold()) === undefined) throw new SparsifyError(`--encode_mode threshold: coder ${c.name} has no learned inference threshold (train it with --inference_threshold; it is learned after threshold_start_step steps)`);
    }
  }

  // Programs and sums.
  const keep = splice === 'each' || splice === 'both';
  const params = (c: EvalCoder): PyObject => c.params ?? c.coder.params;
  const kOf = (c: EvalCoder): number => c.k ?? c.coder.cfg.k;
  const sums = new Map<string, PyObject>();
  for (const c of list) sums.set(c.name, (await runProgram(E.coderSumsProgram(), { params: params(c) })).sums);
  const like = await bundleGet(params(list[0]!), 'b_dec');
  const modelSums = (await runProgram(E.modelSumsProgram(), { like })).sums;
  const sumTensor = (bundle: PyObject, name: string): Promise<Tensor> => bundleGet(bundle, name);
  const patched = async (key: string, bundle: PyObject, ce: string, kl: string) => ({ key, program: bind(E.patchedLogitsProgram(), { ceSum: await sumTensor(bundle, ce), klSum: await sumTensor(bundle, kl) }) });

  const clean: Pass = {
    hooks: list.map((c): PassHook => ({
      key: c.name,
      module: c.hookpoint,
      program: bind(E.encodeHookProgram(c.coder.structure, keep, encodeMode), { params: params(c), k: kOf(c), sums: sums.get(c.name)!, keepKey: `recon:${c.name}` }),
    })),
    logits: splice === 'none' ? null : { key: 'clean', program: bind(E.cleanLogitsProgram(), { sums: modelSums }) },
  };
  const passes: Pass[] = [clean];
  const zero = bind(E.zeroHookProgram(), {});
  if (keep) {
    for (const c of list) {
      const s = sums.get(c.name)!;
      passes.push({
        hooks: [{ key: c.name, module: c.hookpoint, program: bind(E.spliceKeptHookProgram(), { keepKey: `recon:${c.name}` }), replace: true }],
        logits: await patched(c.name, s, 'ce_spliced', 'kl_spliced'),
      });
      passes.push({ hooks: [{ key: c.name, module: c.hookpoint, program: zero, replace: true }], logits: await patched(c.name, s, 'ce_zero', 'kl_zero') });
    }
  }
  if (splice === 'all' || splice === 'both') {
    const first = new Map<string, EvalCoder>();
    for (const c of list) if (!first.has(c.hookpoint)) first.set(c.hookpoint, c);
    if (first.size < list.length) warnings.push(`--splice all replaces each hookpoint by its first coder (${[...first.values()].map((c) => c.name).join(', ')})`);
    const live: PassHook[] = [...first.values()].map((c) => ({
      key: c.name,
      module: c.hookpoint,
      program: bind(E.spliceLiveHookProgram(c.coder.structure, encodeMode), { params: params(c), k: kOf(c) }),
      replace: true,
    }));
    passes.push({ hooks: live, logits: await patched('all', modelSums, 'ce_spliced_all', 'kl_spliced_all') });
    passes.push({ hooks: [...first.values()].map((c) => ({ key: c.name, module: c.hookpoint, program: zero, replace: true })), logits: await patched('all', modelSums, 'ce_zero_all', 'kl_zero_all') });
  }

  // The data pass: one bridge call per batch.
  const excluded = [...new Set([...(options.specialTokenIds ?? model.specialTokenIds ?? []), ...(options.excludeTokens ?? [])])].sort((a, b) => a - b);
  const total = Math.ceil((end - start) / batchSize);
  for (let b = 0; b < total; b++) {
    const a = start + b * batchSize;
    await runPasses({ model: model.model, rows: dataset.rows, batches: [[a, Math.min(a + batchSize, end)]], passes, device: model.device, excludeTokens: excluded, vocabSize: model.vocabSize });
    options.onBatch?.(b + 1, total);
  }

  // Read every sum with one device sync.
  const after = [
    ...list.map((c) => ({ key: c.name, program: bind(E.readSumsProgram(E.CODER_SCALARS), { sums: sums.get(c.name)! }) })),
    { key: '__model__', program: bind(E.readSumsProgram(E.MODEL_SUMS), { sums: modelSums }) },
  ];
  const read = (await runPasses({ model: model.model, rows: dataset.rows, batches: [], passes: [], device: model.device, after })).metrics;
  const m = read.__model__ as Record<string, number>;
  const positions = m.positions!;
  const per = (x: number): number => x / positions;
  const report: EvalReport['coders'] = {};
  let tokens = 0;
  for (const c of list) {
    const r = read[c.name] as Record<string, number>;
    const n = r.tokens!;
    tokens = Math.max(tokens, n);
    const latents: Record<string, number[]> = {};
    for (const d of DEVICE_SUMS) if (d.shape === 'latents') latents[d.name] = await (await bundleGet(sums.get(c.name)!, d.name)).toNumbers();
    options.onDensity?.(c.name, Float64Array.from(latents[FIRE_COUNTS.name]!, (x) => x / n));
    const sumsRead: ReadSums = { scalars: r, latents, batches: total, tokens: n };
    const coderEval = {
      hookpoint: c.hookpoint,
      path: c.path ?? null,
      d_in: c.coder.dIn,
      num_latents: numLatentsFor(c.coder.cfg, c.coder.dIn),
      k: kOf(c),
      transcode: c.coder.cfg.transcode,
      tokens: n,
      ...Object.fromEntries(CODER_METRICS.map((metric) => [metric.name, metric.value(sumsRead)])),
      splice: keep ? spliceMetrics({ ceClean: per(m.ce_clean!), ceSpliced: per(r.ce_spliced!), ceZero: per(r.ce_zero!), klSpliced: per(r.kl_spliced!), klZero: per(r.kl_zero!) }) : null,
    } as CoderEval;
    report[c.name] = coderEval;
  }
  const spliceAll =
    splice === 'all' || splice === 'both' ? spliceMetrics({ ceClean: per(m.ce_clean!), ceSpliced: per(m.ce_spliced_all!), ceZero: per(m.ce_zero_all!), klSpliced: per(m.kl_spliced_all!), klZero: per(m.kl_zero_all!) }) : null;
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
    encode_mode: encodeMode,
    excluded_token_ids: excluded,
    coders: report,
    splice_all: spliceAll,
    warnings,
    seconds: (Date.now() - started) / 1000,
    finished: new Date().toISOString(),
  };
}
