/**
 * `groupmax`: the M latents split into k contiguous groups of M/k; each token keeps the
 * largest of each group (sparsify/fused_encoder.py's groupmax), so exactly k per token.
 */
import type { Activation } from './activation.js';
import { topk } from './topk.js';

export const groupmax: Activation<'groupmax', never> = {
  name: 'groupmax',
  summary: 'the max of each of k equal groups of latents',
  className: 'GroupMax',
  check: (k, numLatents, latents) => topk.check(k, numLatents, latents) ?? (numLatents % k !== 0 ? `groupmax needs ${latents} to be divisible by k=${k}` : undefined),
  select(f, preacts, k) {
    // torch.max gives positions within each group; the offsets make them latent indices.
    const numLatents = preacts.size(-1);
    const grouped = preacts.unflatten(-1, [k, -1]).max(-1);
    const offsets = f.arange(0, numLatents, numLatents.floorDiv(k), preacts).named('offsets');
    return { values: grouped.values, indices: offsets.add(grouped.indices) };
  },
  backward: 'kept-entries',
  padded: false,
  usesK: true,
  inference: 'own',
  params: [],
};
