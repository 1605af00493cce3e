/**
 * `topk`: the k largest pre-activations of each token (sparsify/fused_encoder.py, the
 * reference's default), in torch.topk's unsorted order. It can learn an inference threshold
 * (off unless asked): the average over tokens of each one's smallest kept activation.
 */
import type { Activation } from './activation.js';

export const topk: Activation<'topk', never> = {
  name: 'topk',
  summary: 'the k largest latents of each token',
  className: 'TopK',
  check: (k, numLatents, latents) => (k > numLatents ? `k=${k} is larger than ${latents}; use k <= ${numLatents}` : undefined),
  select: (_f, preacts, k) => preacts.topk(k, { dim: -1, sorted: false }),
  backward: 'kept-entries',
  padded: false,
  usesK: true,
  inference: 'topk',
  params: [],
  learnedThreshold: {
    byDefault: false,
    // dictionary_learning's TopKTrainer.update_threshold: each token's smallest positive kept
    // value, averaged over the tokens. A token with none is left out (there it would make the
    // average infinite); a batch with none gives 0, as its BatchTopK does.
    sample(f, kept) {
      const values = kept.values.detach().float().named('kept_float');
      const rowMin = f.where(values.gt(0), values, Infinity).amin(1).named('row_min');
      const finite = rowMin.lt(Infinity).named('has_active');
      const count = finite.sum().named('active_rows');
      const mean = f.where(finite, rowMin, 0).sum().div(count.clamp(1, null)).named('mean_row_min');
      return f.where(count.gt(0), mean, 0);
    },
  },
};
