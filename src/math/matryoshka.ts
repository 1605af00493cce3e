/**
 * Matryoshka training (Bussmann et al. 2025; dictionary_learning's MatryoshkaBatchTopKTrainer):
 * latents `0..m1-1` must reconstruct on their own, then `0..m2-1`, ..., then all of them, so the
 * first latents learn the general features and later ones refine them. The loss weighs each
 * prefix's fvu; the reconstruction from all latents is the coder's output.
 *
 * The prefix reconstructions are the running sums of each group's part (latents
 * `m_{g-1}..m_g - 1`). The parts come from one embedding bag over the selection's slots
 * sorted by group within each token, one bag per (token, group): the decoder's work once, not
 * once per prefix.
 */
import type { ProgramBuilder, SymTensor } from '../kernels/index.js';
import type { CoderParams, Matryoshka } from './structure.js';

/** Each token's decoded part per group of latents, [N, G, D] (no bias): group g holds latents `prefixes[g-1] <= i < prefixes[g]`. */
export function groupParts(g: ProgramBuilder, params: CoderParams, acts: SymTensor, indices: SymTensor, prefixes: readonly number[]): SymTensor {
  const groups = prefixes.length + 1;
  const wDec = params.get('W_dec');
  // A slot's group: how many prefixes its latent is at or past.
  let group = indices.ge(prefixes[0]!).to('int64');
  for (const m of prefixes.slice(1)) group = group.add(indices.ge(m).to('int64'));
  const sorted = group.named('slot_group').sort({ dim: -1 });
  const tokens = indices.size(0);
  // Bag (n, g) is number n * G + g; the sorted slots list the bags in order.
  const bag = sorted.values.add(g.arange(0, tokens.mul(groups), groups, indices).unsqueeze(1)).flatten().named('slot_bag');
  const counts = bag.bincount(tokens.mul(groups)).named('bag_sizes');
  const offsets = counts.cumsum(0).sub(counts).named('bag_offsets');
  const slotIndices = indices.gather(1, sorted.indices).flatten().named('bag_indices');
  const slotActs = acts.gather(1, sorted.indices).flatten().typeAs(wDec).named('bag_acts');
  return g.embeddingBags(slotIndices, wDec, offsets, slotActs).unflatten(0, [tokens, groups]).named('group_parts');
}

/**
 * The reconstructions from each prefix and from all latents, `base` ([N, D]: b_dec, plus the
 * skip connection) plus the running sum of the groups' parts, and the Matryoshka loss:
 * sum_i weights[i] * ||y - recon_i||^2 / totalVariance. Returns the last (all latents) too.
 */
export function matryoshkaLoss(
  parts: SymTensor,
  base: SymTensor,
  y: SymTensor,
  totalVariance: SymTensor,
  m: Matryoshka,
): { saeOut: SymTensor; loss: SymTensor } {
  let recon = base;
  let loss: SymTensor | undefined;
  m.weights.forEach((w, i) => {
    recon = recon.add(parts.narrow(1, i, 1).squeeze(1)).named(`prefix_recon_${i}`);
    const term = y.sub(recon).pow(2).sum().mul(w).named(`prefix_sse_${i}`);
    loss = loss ? loss.add(term) : term;
  });
  return { saeOut: recon, loss: loss!.div(totalVariance).named('matryoshka_loss') };
}
