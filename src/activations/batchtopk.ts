/**
 * `batchtopk`: the N*k largest pre-activations of the whole batch of N tokens (after the relu),
 * so a token keeps a varying number of latents, k on average: dictionary_learning's
 * `BatchTopKSAE.encode(use_threshold=False)`. Training's selection is ragged (a flat list of
 * the N*k entries with each one's token: no padding to the widest token); inference's is the
 * same entries in rows. Under data parallel the batch is each rank's own. By default it learns
 * an inference threshold, the batch's smallest kept activation averaged over steps, so that a
 * coder encodes each token on its own at inference.
 */
import type { ProgramBuilder, SymScalar, SymTensor } from '../kernels/index.js';
import type { Activation, LatentSelection } from './activation.js';
import { asRows, raggedFromPositions } from './ragged.js';
import { topk } from './topk.js';

/**
 * Candidates per token, in multiples of k, for the batch cut's lower bound. More make the
 * bound tighter (fewer entries to look at past it) and the per-row top-k dearer.
 */
const CANDIDATES_PER_K = 2;

/**
 * The batch's N*k largest entries of `preacts` [N, M] that are above zero, ragged, in row-major
 * order: the dense formula's positive entries (the dense formula also keeps zeros when fewer
 * than N*k entries are positive; those are inactive, so leaving them out changes nothing).
 *
 * A top-(N*k) over all N*M entries is slow (a partial sort of the whole batch). Instead: each
 * row's top c*k are a subset of the entries, so the (N*k)-th largest of them is at most the
 * batch's (N*k)-th largest: every entry the dense formula keeps is at or above it. The entries
 * at or above that bound are few (N*k, plus those of rows with more than c*k in the cut), and
 * the top N*k of them are exactly the dense formula's. One sync: their count.
 */
function batchTopK(f: ProgramBuilder, preacts: SymTensor, k: SymScalar | number): LatentSelection {
  const n = preacts.size(0);
  const m = preacts.size(-1);
  const budget = n.mul(k);
  const candidates = preacts.topk(f.min(m, typeof k === 'number' ? CANDIDATES_PER_K * k : k.mul(CANDIDATES_PER_K)), { dim: -1, sorted: false }).values.named('candidates');
  const bound = candidates.flatten().topk(budget, { dim: -1, sorted: false }).values.amin(0).named('cut_bound');
  // At or above the bound and above zero, in one comparison: at or above the bound raised to
  // the dtype's smallest positive value (only a bound of 0 changes).
  const floor = bound.clamp(f.smallestPositive(bound), null).named('cut_floor');
  const flat = preacts.flatten().named('flat_preacts');
  const positions = flat.ge(floor).nonzero().named('at_or_above');
  const values = flat.select(positions).named('cut_values');
  // More than N*k at or above the bound: keep the N*k largest, still in row-major order.
  const kept = f.ifElse(
    positions.size(0).gt(budget),
    () => {
      const order = values.topk(budget, { dim: -1, sorted: false }).indices.sort().values.named('in_order');
      return { positions: positions.select(order), values: values.select(order) };
    },
    () => ({ positions, values }),
  );
  return raggedFromPositions(kept.positions.named('kept_positions'), kept.values.named('kept_values'), n, m);
}

export const batchtopk: Activation<'batchtopk', never> = {
  name: 'batchtopk',
  summary: 'the N*k largest latents of the batch of N tokens, k per token on average (each rank\'s own batch under data parallel)',
  className: 'BatchTopK',
  check: topk.check,
  select: batchTopK,
  infer: (f, preacts, k) => asRows(f, batchTopK(f, preacts, k), preacts.size(0)),
  backward: 'positive-entries',
  padded: true,
  ragged: true,
  usesK: true,
  inference: 'own',
  params: [],
  learnedThreshold: {
    byDefault: true,
    // dictionary_learning's BatchTopKTrainer.update_threshold: the smallest positive kept value
    // of the batch, 0 when there is none.
    sample(f, kept) {
      const values = kept.values.detach().float().flatten().named('kept_float');
      // A batch that keeps nothing (no positive pre-activation) has no entries to take the minimum of.
      const { lowest } = f.ifElse(
        values.size(0).gt(0),
        () => ({ lowest: f.where(values.gt(0), values, Infinity).amin(0).named('batch_min') }),
        () => ({ lowest: f.full([], Infinity, 'float32', values) }),
      );
      return f.where(lowest.lt(Infinity), lowest, 0);
    },
  },
};
