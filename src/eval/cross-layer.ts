/**
 * Evaluating a cross-layer transcoder inside the model: per target layer the coder metrics
 * (fvu, explained variance, L0 and firing of that layer's source latents, ...), the model's
 * CE and KL with that layer's MLP output replaced by the CLT's reconstruction from the clean
 * codes (each layer alone), and the replacement model: every MLP replaced at once, each
 * layer's codes encoded from what it sees then (earlier layers already replaced). One pass
 * per batch runs all of it: at layer j's hook the codes of layers < j are already in the
 * batch's context, so target j is decoded right there.
 */
import { SparsifyError } from '../bridge/errors.js';
import { bundleGet, type PyObject } from '../bridge/ops.js';
import type { CrossLayerTranscoder } from '../coder/cross-layer.js';
import type { TokenDataset } from '../data/dataset.js';
import { HOOK_INPUTS, In, bind, cachedProgram, defineProgram, runPasses, runProgram, type Pass, type SymBundle, type SymScalar, type SymTensor } from '../kernels/index.js';
import * as sc from '../math/sparse-coder.js';
import { targetAt } from '../math/cross-layer.js';
import type { LatentSelection } from '../activations/index.js';
import { structureTag, type CoderParamName, type CoderParams, type CoderStructure } from '../math/structure.js';
import type { TrainableModel } from '../model/language-model.js';
import { checkCodersFit } from './evaluate.js';
import { CODER_METRICS, DEVICE_SUMS, SPLICE_METRICS, type ReadSums, type SpliceBase } from './metrics/index.js';
import * as E from './programs.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * Target j's hook: encode its source's input (all rows), keep the codes, decode target j from
 * the codes of sources 0..j. `clean`: add the batch to target j's sums and keep the patched
 * output for the splice of this layer alone; `live`: replace the output (the replacement model).
 */
function targetHookProgram(s: CoderStructure, j: number, mode: 'clean' | 'live') {
  const params = Object.fromEntries(range(j + 1).map((i) => [`p${i}`, In.bundle<CoderParamName>()]));
  const signature = { ...HOOK_INPUTS, ...params, k: In.scalar(), ...(mode === 'clean' ? { sums: In.bundle() } : {}) };
  return cachedProgram(`clt_eval:${structureTag(s)}:${j}:${mode}`, () =>
    defineProgram(`clt_eval_${mode}_${structureTag(s)}_${j}`, signature, (g, io) => {
      const { inputs, outputs, mask, context } = io as unknown as { inputs: SymTensor; outputs: SymTensor; mask: SymTensor; context: SymBundle<string> };
      const ps = range(j + 1).map((i) => (io as unknown as Record<string, CoderParams>)[`p${i}`]!);
      const own = ps[j]!;
      const w = own.get('encoder.weight');
      const yAll = outputs.flatten(0, 1).named('all_outputs');
      const x = inputs.flatten(0, 1).typeAs(w).named('x');
      const enc = sc.encode(g, own, x, (io as unknown as { k: SymScalar }).k, s, 'index_add', 'infer');
      const codes = (i: number): LatentSelection => (i === j ? { values: enc.topActs, indices: enc.topIndices } : { values: context.get(`${mode}_acts_${i}`), indices: context.get(`${mode}_idx_${i}`) });
      const targetOf = (i: number): SymTensor => targetAt(ps[i]!.get('W_dec'), j - i);
      let recon = sc.decodeRows(g, targetOf(j), codes(j)).add(own.get('b_dec'));
      for (let i = 0; i < j; i++) recon = recon.add(sc.decodeRows(g, targetOf(i), codes(i)));
      recon = recon.named(`recon_${j}`);
      const keep: Record<string, SymTensor> = { [`${mode}_acts_${j}`]: enc.topActs, [`${mode}_idx_${j}`]: enc.topIndices };
      // Special and excluded tokens keep the model's own output.
      const patched = E.patchOutput(g, outputs, yAll, mask, recon.rowsWhere(mask));
      if (mode === 'live') return { keep, output: patched, metrics: {} } as Record<string, unknown> as never;
      const sums = (io as unknown as { sums: SymBundle<string> }).sums;
      const y = yAll.rowsWhere(mask).typeAs(w).named('y');
      const e = y.sub(recon.rowsWhere(mask)).named('e');
      const acts = enc.topActs.rowsWhere(mask).named('kept_acts');
      const batch = { y, y64: y.to('float64').named('y64'), e, totalVariance: y.sub(y.mean(0)).pow(2).sum().named('total_variance'), acts, indices: enc.topIndices.rowsWhere(mask).named('kept_indices'), fired: acts.gt(0).named('fired') };
      for (const d of DEVICE_SUMS) d.add(g, sums.get(d.name), batch);
      return { keep: { ...keep, [`clean_recon_${j}`]: patched }, metrics: {} } as never;
    }),
  );
}

export interface CrossLayerEvalOptions {
  rows?: readonly [number, number];
  batchSize?: number;
  /** Token ids left out of every sum (special tokens: BOS/EOS/pad, --exclude_tokens). */
  excludeTokens?: readonly number[];
  /** The k each source selects (default: the CLT's; a training run's current k while it decays). */
  k?: number;
}

/** Per target layer: the coder metrics and this layer alone spliced; and every layer at once. */
export interface CrossLayerEvalReport {
  targets: Record<string, { metrics: Record<string, number | null>; splice: Record<string, number> | null }>;
  /** The replacement model: every MLP replaced at once (null without an LM head). */
  replacement: Record<string, number> | null;
  tokens: number;
}

const spliceMetrics = (base: SpliceBase): Record<string, number> => Object.fromEntries(SPLICE_METRICS.map((m) => [m.name, m.value(base)]));

/**
 * Evaluate a CLT on rows of a dataset: one pass per batch with a hook per layer (the clean
 * codes, sums and reconstructions), then per layer a spliced and a zero-ablated pass, and the
 * replacement model's pass with every MLP replaced (and its all-zero counterpart).
 *
 * @example
 * const report = await evaluateCrossLayer(model, await CrossLayerTranscoder.load('my-clt'), data, { rows: [900, 1000] });
 */
export async function evaluateCrossLayer(model: TrainableModel, clt: CrossLayerTranscoder, dataset: TokenDataset, options: CrossLayerEvalOptions = {}): Promise<CrossLayerEvalReport> {
  const [start, end] = options.rows ?? [0, dataset.numRows];
  if (!(end > start) || start < 0 || end > dataset.numRows) throw new SparsifyError(`no rows to evaluate: rows ${start}..${end} of a dataset of ${dataset.numRows}`);
  const batchSize = options.batchSize ?? 8;
  const k = options.k ?? clt.cfg.k;
  const s = clt.structure;
  // A stand-in coder per layer for the width check: the CLT's source reads the module's input, its target is the output.
  await checkCodersFit(model, clt.layers.map((layer) => ({ name: layer, hookpoint: layer, coder: { cfg: clt.cfg, dIn: clt.dIn } as never })));
  const splice = model.lmHead === true;
  const sums: PyObject[] = [];
  for (const p of clt.sources) sums.push((await runProgram(E.coderSumsProgram(), { params: p })).sums);
  const modelSums = (await runProgram(E.modelSumsProgram(), { like: await bundleGet(clt.sources[0]!, 'b_dec') })).sums;
  const sources = (j: number): Record<string, PyObject> => Object.fromEntries(range(j + 1).map((i) => [`p${i}`, clt.sources[i]!]));
  const patched = async (key: string, bundle: PyObject, ce: string, kl: string) => ({ key, program: bind(E.patchedLogitsProgram(), { ceSum: await bundleGet(bundle, ce), klSum: await bundleGet(bundle, kl) }) });
  const zero = bind(E.zeroHookProgram(), {});
  const passes: Pass[] = [
    {
      hooks: clt.layers.map((layer, j) => ({ key: layer, module: layer, program: bind(targetHookProgram(s, j, 'clean'), { ...sources(j), k, sums: sums[j]! } as never) })),
      logits: splice ? { key: 'clean', program: bind(E.cleanLogitsProgram(), { sums: modelSums }) } : null,
    },
  ];
  if (splice) {
    for (const [j, layer] of clt.layers.entries()) {
      passes.push({ hooks: [{ key: layer, module: layer, program: bind(E.spliceKeptHookProgram(), { keepKey: `clean_recon_${j}` }), replace: true }], logits: await patched(layer, sums[j]!, 'ce_spliced', 'kl_spliced') });
      passes.push({ hooks: [{ key: layer, module: layer, program: zero, replace: true }], logits: await patched(layer, sums[j]!, 'ce_zero', 'kl_zero') });
    }
    passes.push({ hooks: clt.layers.map((layer, j) => ({ key: layer, module: layer, program: bind(targetHookProgram(s, j, 'live'), { ...sources(j), k } as never), replace: true })), logits: await patched('all', modelSums, 'ce_spliced_all', 'kl_spliced_all') });
    passes.push({ hooks: clt.layers.map((layer) => ({ key: layer, module: layer, program: zero, replace: true })), logits: await patched('all', modelSums, 'ce_zero_all', 'kl_zero_all') });
  }
  const total = Math.ceil((end - start) / batchSize);
  for (let b = 0; b < total; b++) {
    const a = start + b * batchSize;
    await runPasses({ model: model.model, rows: dataset.rows, batches: [[a, Math.min(a + batchSize, end)]], passes, device: model.device, excludeTokens: options.excludeTokens ?? [], vocabSize: model.vocabSize });
  }
  const after = [...clt.layers.map((layer, j) => ({ key: layer, program: bind(E.readSumsProgram(E.CODER_SCALARS), { sums: sums[j]! }) })), { key: '__model__', program: bind(E.readSumsProgram(E.MODEL_SUMS), { sums: modelSums }) }];
  const read = (await runPasses({ model: model.model, rows: dataset.rows, batches: [], passes: [], device: model.device, after })).metrics;
  const m = read.__model__ as Record<string, number>;
  const per = (x: number): number => x / m.positions!;
  const targets: CrossLayerEvalReport['targets'] = {};
  let tokens = 0;
  for (const [j, layer] of clt.layers.entries()) {
    const r = read[layer] as Record<string, number>;
    tokens = r.tokens!;
    const latents: Record<string, number[]> = {};
    for (const d of DEVICE_SUMS) if (d.shape === 'latents') latents[d.name] = await (await bundleGet(sums[j]!, d.name)).toNumbers();
    const sumsRead: ReadSums = { scalars: r, latents, batches: total, tokens: r.tokens! };
    targets[layer] = {
      // The scalar coder metrics (fvu, explained variance, L0 of this layer's source latents, dead and dense fractions).
      metrics: Object.fromEntries(CODER_METRICS.map((metric) => [metric.name, metric.value(sumsRead)]).filter(([, v]) => typeof v === 'number' || v === null)) as Record<string, number | null>,
      splice: splice ? spliceMetrics({ ceClean: per(m.ce_clean!), ceSpliced: per(r.ce_spliced!), ceZero: per(r.ce_zero!), klSpliced: per(r.kl_spliced!), klZero: per(r.kl_zero!) }) : null,
    };
  }
  const replacement = splice ? spliceMetrics({ ceClean: per(m.ce_clean!), ceSpliced: per(m.ce_spliced_all!), ceZero: per(m.ce_zero_all!), klSpliced: per(m.kl_spliced_all!), klZero: per(m.kl_zero_all!) }) : null;
  return { targets, replacement, tokens };
}
