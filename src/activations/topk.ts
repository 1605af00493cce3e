/**
 * `topk`: the k largest pre-activations of each token (sparsify/fused_encoder.py, the
 * reference's default), in torch.topk's unsorted order.
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
  params: [],
};
