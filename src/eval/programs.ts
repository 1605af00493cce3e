/**
 * Evaluation's programs: what each hook and each pass's logits add to the running sums of a
 * coder's metrics, and the replacements splicing needs. Sums stay on the device (float64),
 * read once at the end; nothing grows with the number of tokens but per-latent counters.
 */
import { cachedProgram, defineProgram, type ProgramBuilder, type ProgramSpec, type SymTensor } from '../kernels/index.js';
import { logitsInputs } from '../model/pass-inputs.js';
import { reconstruct } from '../math/sparse-coder.js';
import { structureTag as tag, type CoderParamName, type CoderStructure } from '../math/structure.js';

/** What evaluation accumulates for one coder. */
export const CODER_SUMS = ['fvu_sum', 'sq_err', 'sum_y2', 'sum_y_norm2', 'tokens', 'l0', 'ce_spliced', 'kl_spliced', 'ce_zero', 'kl_zero'] as const;
/** What it accumulates for the model: the clean CE, the positions scored, and --splice all. */
export const MODEL_SUMS = ['ce_clean', 'positions', 'ce_spliced_all', 'kl_spliced_all', 'ce_zero_all', 'kl_zero_all'] as const;

/** The zeroed sums of one coder (float64 scalars, per-latent firing counts, the target's sum). */
export function coderSumsProgram(): ProgramSpec<'sums'> {
  return cachedProgram('eval_coder_sums', () =>
    defineProgram('eval_coder_sums', (g) => {
      const params = g.bundleInput<CoderParamName>('params');
      const w = params.get('encoder.weight');
      const scalar = () => g.zeros([], { dtype: 'float64', device: w });
      const entries: Record<string, SymTensor> = {};
      for (const name of ['fvu_sum', 'sq_err', 'sum_y2', 'tokens', 'l0', 'ce_spliced', 'kl_spliced', 'ce_zero', 'kl_zero']) entries[name] = scalar().named(name);
      entries.sum_y = g.zeros([w.size(1)], { dtype: 'float64', device: w }).named('sum_y');
      entries.fire_counts = g.zeros([w.size(0)], { dtype: 'int64', device: w }).named('fire_counts');
      return { sums: g.bundle(entries).named('sums') };
    }),
  );
}

/** The zeroed sums of the model's side. */
export function modelSumsProgram(): ProgramSpec<'sums'> {
  return cachedProgram('eval_model_sums', () =>
    defineProgram('eval_model_sums', (g) => {
      const like = g.input('like');
      const entries: Record<string, SymTensor> = {};
      for (const name of MODEL_SUMS) entries[name] = g.zeros([], { dtype: 'float64', device: like }).named(name);
      return { sums: g.bundle(entries).named('sums') };
    }),
  );
}

/** The inputs of every hook program, and this coder's view of the activations: x and y over the kept tokens. */
function hookActivations(g: ProgramBuilder, s: CoderStructure) {
  const inputs = g.input('inputs');
  const outputs = g.input('outputs');
  const mask = g.optionalInput('mask', { dtype: 'bool' });
  const context = g.bundleInput<string>('context');
  const params = g.bundleInput<CoderParamName>('params');
  const k = g.scalarInput('k');
  const w = params.get('encoder.weight');
  const yAll = outputs.flatten(0, 1).named('all_outputs');
  const xAll = s.transcode ? inputs.flatten(0, 1).named('all_inputs') : yAll;
  // Special and excluded tokens take no part (their rows are dropped).
  const y = yAll.rowsWhere(mask).typeAs(w).named('y');
  const x = s.transcode ? xAll.rowsWhere(mask).typeAs(w).named('x') : y;
  return { outputs, mask, context, params, k, yAll, x, y };
}

/** The module's output with the kept tokens' rows replaced by `rows` (special tokens keep theirs). */
function patchOutput(g: ProgramBuilder, outputs: SymTensor, yAll: SymTensor, mask: SymTensor, rows: SymTensor): SymTensor {
  const typed = rows.typeAs(outputs);
  const { patched } = g.ifElse(
    g.isNone(mask),
    () => ({ patched: typed }),
    () => ({ patched: yAll.detach().clone().indexPut(mask, typed) }),
  );
  return patched.reshapeAs(outputs).named('patched');
}

/**
 * The clean pass's hook: encode the clean activations once, add this batch to the
 * reconstruction sums, and (when splicing) keep the patched output for the spliced pass.
 */
export function encodeHookProgram(s: CoderStructure, keep: boolean): ProgramSpec<'keep' | 'metrics'> {
  return cachedProgram(`eval_encode:${tag(s)}:${keep}`, () =>
    defineProgram(`eval_encode_${tag(s)}${keep ? '_keep' : ''}`, (g) => {
      const { outputs, mask, params, k, yAll, x, y } = hookActivations(g, s);
      const sums = g.bundleInput<string>('sums');
      const keepKey = g.scalarInput('keep_key');
      const { recon, acts, indices } = reconstruct(g, params, x, k, s);
      // fvu as training defines it (this batch), and float64 sums over every token for the
      // explained variance: 1 - sum|y - y_hat|^2 / (sum|y|^2 - |sum y|^2 / N).
      const e = y.sub(recon).named('e');
      const totalVariance = y.sub(y.mean(0)).pow(2).sum().named('total_variance');
      sums.get('fvu_sum').add_(e.pow(2).sum().div(totalVariance));
      const yd = y.to('float64').named('y64');
      sums.get('sq_err').add_(e.to('float64').pow(2).sum());
      sums.get('sum_y2').add_(yd.pow(2).sum());
      sums.get('sum_y').add_(yd.sum(0));
      sums.get('tokens').add_(y.size(0));
      // L0 and firing counts: a selected latent fires when its activation is above zero.
      const fired = acts.gt(0).named('fired');
      sums.get('l0').add_(fired.sum());
      sums.get('fire_counts').indexAdd_(0, indices.flatten(), fired.flatten().to('int64'));
      if (!keep) return { keep: {}, metrics: {} };
      return { keep: g.dictOf(keepKey, patchOutput(g, outputs, yAll, mask, recon)), metrics: {} };
    }),
  );
}

/** A spliced pass's hook: the module's output becomes the reconstruction the clean pass kept. */
export function spliceKeptHookProgram(): ProgramSpec<'output'> {
  return cachedProgram('eval_splice_kept', () =>
    defineProgram('eval_splice_kept', (g) => {
      g.input('inputs');
      g.input('outputs');
      g.optionalInput('mask', { dtype: 'bool' });
      const context = g.bundleInput<string>('context');
      const keepKey = g.scalarInput('keep_key');
      return { output: context.at(keepKey).named('kept_reconstruction') };
    }),
  );
}

/** --splice all's hook: encode what this module sees now (earlier modules already replaced) and replace its output. */
export function spliceLiveHookProgram(s: CoderStructure): ProgramSpec<'output'> {
  return cachedProgram(`eval_splice_live:${tag(s)}`, () =>
    defineProgram(`eval_splice_live_${tag(s)}`, (g) => {
      const { outputs, mask, params, k, yAll, x } = hookActivations(g, s);
      const { recon } = reconstruct(g, params, x, k, s);
      return { output: patchOutput(g, outputs, yAll, mask, recon) };
    }),
  );
}

/** A zero-ablation pass's hook: the kept tokens' rows of the module's output become zeros. */
export function zeroHookProgram(): ProgramSpec<'output'> {
  return cachedProgram('eval_zero', () =>
    defineProgram('eval_zero', (g) => {
      g.input('inputs');
      const outputs = g.input('outputs');
      const mask = g.optionalInput('mask', { dtype: 'bool' });
      g.bundleInput<string>('context');
      const yAll = outputs.flatten(0, 1).named('all_outputs');
      const { zeroed } = g.ifElse(
        g.isNone(mask),
        () => ({ zeroed: g.zerosLike(yAll) }),
        () => ({ zeroed: g.where(mask.unsqueeze(1), 0, yAll) }),
      );
      return { output: zeroed.reshapeAs(outputs).named('zeroed') };
    }),
  );
}

/**
 * A pass's log-probs, the per-token next-token CE, and the weight of each position: positions
 * 0..T-2 predicting t + 1, counted when neither token t nor t + 1 is special or excluded.
 */
function tokenCe(g: ProgramBuilder, logits: SymTensor, inputIds: SymTensor, mask: SymTensor) {
  const logprobs = logits.float().logSoftmax(-1).named('logprobs');
  const labels = inputIds.slice(1, 1, null).unsqueeze(-1).named('labels');
  const ce = logprobs.slice(1, null, -1).gather(-1, labels).squeeze(-1).neg().flatten().named('token_ce');
  const { weights } = g.ifElse(
    g.isNone(mask),
    () => ({ weights: g.onesLike(ce) }),
    () => {
      const kept = mask.reshapeAs(inputIds).float().named('kept');
      return { weights: kept.slice(1, null, -1).mul(kept.slice(1, 1, null)).flatten() };
    },
  );
  return { logprobs, ce, weights };
}

/**
 * The clean pass's logits: add the clean CE and the positions scored; keep what KL needs of
 * the clean distribution, once per batch: its probabilities and sum(p log p).
 */
export function cleanLogitsProgram(): ProgramSpec<'keep' | 'metrics'> {
  return cachedProgram('eval_clean_logits', () =>
    defineProgram('eval_clean_logits', (g) => {
      const { logits, inputIds, mask } = logitsInputs(g);
      const sums = g.bundleInput<string>('sums');
      const { logprobs, ce, weights } = tokenCe(g, logits, inputIds, mask);
      sums.get('ce_clean').add_(ce.mul(weights).sum());
      sums.get('positions').add_(weights.sum());
      const probs = logprobs.exp().named('clean_probs');
      return { keep: { clean_probs: probs, clean_neg_entropy: probs.mul(logprobs).sum(-1).named('clean_neg_entropy') }, metrics: {} };
    }),
  );
}

/**
 * A spliced or ablated pass's logits: add its CE, and KL(clean || this pass) = sum p (log p -
 * log q), computed as sum(p log p) - sum(p log q), into the given sums.
 */
export function patchedLogitsProgram(): ProgramSpec<'metrics'> {
  return cachedProgram('eval_patched_logits', () =>
    defineProgram('eval_patched_logits', (g) => {
      const { logits, inputIds, mask, context } = logitsInputs(g);
      const ceSum = g.input('ce_sum');
      const klSum = g.input('kl_sum');
      const { logprobs, ce, weights } = tokenCe(g, logits, inputIds, mask);
      ceSum.add_(ce.mul(weights).sum());
      const cross = context.get('clean_probs').mul(logprobs).sum(-1).named('cross');
      const kl = context.get('clean_neg_entropy').sub(cross).slice(1, null, -1).flatten().named('token_kl');
      klSum.add_(kl.mul(weights).sum());
      return { metrics: {} };
    }),
  );
}

/** The sums as metrics (read once, with one device sync, at the end). */
export function readSumsProgram(names: readonly string[]): ProgramSpec<'metrics'> {
  return cachedProgram(`eval_read:${names.join(',')}`, () =>
    defineProgram(`eval_read_${names.length}`, (g) => {
      const sums = g.bundleInput<string>('sums');
      const out: Record<string, SymTensor> = {};
      for (const name of names) {
        out[name] = name === 'sum_y_norm2' ? sums.get('sum_y').pow(2).sum().named(name) : sums.get(name).named(name);
      }
      return { metrics: out };
    }),
  );
}

