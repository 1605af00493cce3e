/**
 * Evaluation's programs: what each hook and each pass's logits add to the running sums of a
 * coder's metrics, and the replacements splicing needs. Sums stay on the device (float64),
 * read once at the end; nothing grows with the number of tokens but per-latent counters.
 */
import { HOOK_INPUTS, In, LOGITS_INPUTS, cachedProgram, defineProgram, type ProgramBuilder, type SymTensor } from '../kernels/index.js';
import { reconstruct } from '../math/sparse-coder.js';
import { structureTag as tag, type CoderParamName, type CoderParams, type CoderStructure } from '../math/structure.js';
import type { EvalOptions } from '../config/eval.js';
import { DEVICE_SUMS } from './metrics/index.js';

/** The splice measurements each coder accumulates (per scored position, summed). */
export const SPLICE_SUMS = ['ce_spliced', 'kl_spliced', 'ce_zero', 'kl_zero'] as const;
/** What evaluation accumulates for one coder: its metrics' device sums, then the splice sums. */
export const CODER_SUMS = [...DEVICE_SUMS.map((d) => d.name), ...SPLICE_SUMS];
/** The scalars read of a coder's sums at the end: every sum but the per-latent ones. */
export const CODER_SCALARS = [...DEVICE_SUMS.filter((d) => d.shape !== 'latents').map((d) => d.name), ...SPLICE_SUMS];
/** What it accumulates for the model: the clean CE, the positions scored, and --splice all. */
export const MODEL_SUMS = ['ce_clean', 'positions', 'ce_spliced_all', 'kl_spliced_all', 'ce_zero_all', 'kl_zero_all'] as const;

const params = In.bundle<CoderParamName>();

/** How evaluation encodes (`--encode_mode`, src/config/eval.ts), as the coder's encode modes. */
export type EvalEncodeMode = EvalOptions['encodeMode'];
const ENCODE_MODES = { auto: 'infer', topk: 'selection', threshold: 'threshold' } as const satisfies Record<EvalEncodeMode, string>;
const modeTag = (mode: EvalEncodeMode): string => (mode === 'auto' ? '' : `_${mode}`);

/** The zeroed sums of one coder (float64 scalars, per-latent int64 counts, per-dimension float64). */
export function coderSumsProgram() {
  return cachedProgram('eval_coder_sums', () =>
    defineProgram('eval_coder_sums', { params }, (g, { params }) => {
      const w = params.get('encoder.weight');
      const entries: Record<string, SymTensor> = {};
      for (const d of DEVICE_SUMS) {
        if (d.shape === 'latents') entries[d.name] = g.zeros([w.size(0)], { dtype: 'int64', device: w }).named(d.name);
        else entries[d.name] = g.zeros(d.shape === 'width' ? [w.size(1)] : [], { dtype: 'float64', device: w }).named(d.name);
      }
      for (const name of SPLICE_SUMS) entries[name] = g.zeros([], { dtype: 'float64', device: w }).named(name);
      return { sums: g.bundle(entries).named('sums') };
    }),
  );
}

/** The zeroed sums of the model's side. */
export function modelSumsProgram() {
  return cachedProgram('eval_model_sums', () =>
    defineProgram('eval_model_sums', { like: In.tensor() }, (g, { like }) => {
      const entries: Record<string, SymTensor> = {};
      for (const name of MODEL_SUMS) entries[name] = g.zeros([], { dtype: 'float64', device: like }).named(name);
      return { sums: g.bundle(entries).named('sums') };
    }),
  );
}

/** What a coder's hook programs take besides the runtime's inputs. */
const CODER_INPUTS = { ...HOOK_INPUTS, params, k: In.scalar() };

/** This coder's view of the activations: x and y over the kept tokens. */
function hookActivations(s: CoderStructure, io: { inputs: SymTensor; outputs: SymTensor; mask: SymTensor; params: CoderParams }) {
  const { inputs, outputs, mask, params } = io;
  const w = params.get('encoder.weight');
  const yAll = outputs.flatten(0, 1).named('all_outputs');
  const xAll = s.transcode ? inputs.flatten(0, 1).named('all_inputs') : yAll;
  // Special and excluded tokens take no part (their rows are dropped).
  const y = yAll.rowsWhere(mask).typeAs(w).named('y');
  const x = s.transcode ? xAll.rowsWhere(mask).typeAs(w).named('x') : y;
  return { yAll, x, y };
}

/** The module's output with the kept tokens' rows replaced by `rows` (special tokens keep theirs). */
export function patchOutput(g: ProgramBuilder, outputs: SymTensor, yAll: SymTensor, mask: SymTensor, rows: SymTensor): SymTensor {
  const typed = rows.typeAs(outputs);
  const { patched } = g.ifElse(
    g.isNone(mask),
    () => ({ patched: typed }),
    () => ({ patched: yAll.detach().clone().indexPut(mask, typed) }),
  );
  return patched.reshapeAs(outputs).named('patched');
}

/**
 * The clean pass's hook: encode the clean activations once, add this batch to every metric's
 * device sums, and (when splicing) keep the patched output for the spliced pass.
 */
export function encodeHookProgram(s: CoderStructure, keep: boolean, mode: EvalEncodeMode = 'auto') {
  return cachedProgram(`eval_encode:${tag(s)}:${keep}:${mode}`, () =>
    defineProgram(`eval_encode_${tag(s)}${keep ? '_keep' : ''}${modeTag(mode)}`, { ...CODER_INPUTS, sums: In.bundle(), keepKey: In.scalar<string>() }, (g, io) => {
      const { outputs, mask, params, k, sums, keepKey } = io;
      const { yAll, x, y } = hookActivations(s, io);
      const { recon, acts, indices } = reconstruct(g, params, x, k, s, ENCODE_MODES[mode]);
      const e = y.sub(recon).named('e');
      const totalVariance = y.sub(y.mean(0)).pow(2).sum().named('total_variance');
      // A selected latent fires when its activation is above zero.
      const fired = acts.gt(0).named('fired');
      const batch = { y, y64: y.to('float64').named('y64'), e, totalVariance, acts, indices, fired };
      for (const d of DEVICE_SUMS) d.add(g, sums.get(d.name), batch);
      if (!keep) return { keep: {}, metrics: {} };
      return { keep: g.dictOf(keepKey, patchOutput(g, outputs, yAll, mask, recon)), metrics: {} };
    }),
  );
}

/** A spliced pass's hook: the module's output becomes the reconstruction the clean pass kept. */
export function spliceKeptHookProgram() {
  return cachedProgram('eval_splice_kept', () =>
    defineProgram('eval_splice_kept', { ...HOOK_INPUTS, keepKey: In.scalar<string>() }, (_g, { context, keepKey }) => ({ output: context.at(keepKey).named('kept_reconstruction') })),
  );
}

/** --splice all's hook: encode what this module sees now (earlier modules already replaced) and replace its output. */
export function spliceLiveHookProgram(s: CoderStructure, mode: EvalEncodeMode = 'auto') {
  return cachedProgram(`eval_splice_live:${tag(s)}:${mode}`, () =>
    defineProgram(`eval_splice_live_${tag(s)}${modeTag(mode)}`, CODER_INPUTS, (g, io) => {
      const { outputs, mask, params, k } = io;
      const { yAll, x } = hookActivations(s, io);
      const { recon } = reconstruct(g, params, x, k, s, ENCODE_MODES[mode]);
      return { output: patchOutput(g, outputs, yAll, mask, recon) };
    }),
  );
}

/** A zero-ablation pass's hook: the kept tokens' rows of the module's output become zeros. */
export function zeroHookProgram() {
  return cachedProgram('eval_zero', () =>
    defineProgram('eval_zero', HOOK_INPUTS, (g, { outputs, mask }) => {
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
export function cleanLogitsProgram() {
  return cachedProgram('eval_clean_logits', () =>
    defineProgram('eval_clean_logits', { ...LOGITS_INPUTS, sums: In.bundle() }, (g, { logits, inputIds, mask, sums }) => {
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
export function patchedLogitsProgram() {
  return cachedProgram('eval_patched_logits', () =>
    defineProgram('eval_patched_logits', { ...LOGITS_INPUTS, ceSum: In.tensor(), klSum: In.tensor() }, (g, { logits, inputIds, mask, context, ceSum, klSum }) => {
      const { logprobs, ce, weights } = tokenCe(g, logits, inputIds, mask);
      ceSum.add_(ce.mul(weights).sum());
      const cross = context.get('clean_probs').mul(logprobs).sum(-1).named('cross');
      const kl = context.get('clean_neg_entropy').sub(cross).slice(1, null, -1).flatten().named('token_kl');
      klSum.add_(kl.mul(weights).sum());
      return { metrics: {} };
    }),
  );
}

/** The sums as metrics, `width` sums reduced as their metric reads them (read once, with one device sync, at the end). */
export function readSumsProgram(names: readonly string[]) {
  return cachedProgram(`eval_read:${names.join(',')}`, () =>
    defineProgram(`eval_read_${names.length}`, { sums: In.bundle() }, (_g, { sums }) => {
      const out: Record<string, SymTensor> = {};
      for (const name of names) {
        const read = DEVICE_SUMS.find((d) => d.name === name)?.read;
        out[name] = (read ? read(sums.get(name)) : sums.get(name)).named(name);
      }
      return { metrics: out };
    }),
  );
}

