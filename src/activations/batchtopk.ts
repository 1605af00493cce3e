/**
 * `batchtopk`: the N*k largest pre-activations of the whole batch of N tokens (after the relu),
 * so a token keeps a varying number of latents, k on average: dictionary_learning's
 * `BatchTopKSAE.encode(use_threshold=False)`. The selection is returned padded: each row holds
 * its token's latents, then zero slots up to the batch's largest count (its width is read off
 * the device, one sync per step). Under data parallel the batch is each rank's own. By default
 * it learns an inference threshold, the batch's smallest kept activation averaged over steps,
 * so that a coder encodes each token on its own at inference.
 */
import type { ProgramBuilder, SymScalar, SymTensor } from '../kernels/index.js';
import type { Activation, LatentSelection } from './activation.js';
import { topk } from './topk.js';

/** The batch's N*k largest entries of `preacts` [N, M], regrouped by row: the dense formula, over all N*M entries. */
function wholeBatch(f: ProgramBuilder, preacts: SymTensor, k: SymScalar | number): LatentSelection {
  const n = preacts.size(0);
  const m = preacts.size(-1);
  const top = preacts.flatten().topk(n.mul(k), { dim: -1, sorted: false });
  // Each kept entry's token (row) and latent; then the entries grouped by row.
  const row = top.indices.floorDiv(m).named('kept_row');
  const order = row.sort().indices.named('by_row');
  const rows = row.select(order).named('rows');
  const latents = top.indices.mod(m).select(order).named('latents');
  const counts = rows.bincount(n).named('counts');
  const slot = f.arange(0, rows.size(0), 1, rows).sub(counts.cumsum(0).sub(counts).select(rows)).named('slot');
  const width = counts.max(0).values.int().named('width');
  const values = f.zeros([n, width], { dtype: 'float32', device: preacts }).typeAs(preacts).named('batch_values');
  values.setAt2_(rows, slot, top.values.select(order));
  const indices = f.zeros([n, width], { dtype: 'int64', device: preacts }).named('batch_indices');
  indices.setAt2_(rows, slot, latents);
  return { values, indices };
}

export const batchtopk: Activation<'batchtopk', never> = {
  name: 'batchtopk',
  summary: 'the N*k largest latents of the batch of N tokens, k per token on average (each rank\'s own batch under data parallel)',
  className: 'BatchTopK',
  check: topk.check,
  select: wholeBatch,
  backward: 'positive-entries',
  padded: true,
  usesK: true,
  params: [],
  learnedThreshold: {
    byDefault: true,
    // dictionary_learning's BatchTopKTrainer.update_threshold: the smallest positive kept value
    // of the batch, 0 when there is none.
    sample(f, kept) {
      const values = kept.values.detach().float().named('kept_float');
      const lowest = f.where(values.gt(0), values, Infinity).amin(1).amin(0).named('batch_min');
      return f.where(lowest.lt(Infinity), lowest, 0);
    },
  },
};
