/**
 * Matryoshka training (Bussmann et al. 2025; dictionary_learning's MatryoshkaBatchTopKTrainer):
 * latents `0..m1-1` must reconstruct on their own, then `0..m2-1`, ..., then all of them, so the
 * first latents learn the general features and later ones refine them. The loss weighs each
 * prefix's fvu; the reconstruction from all latents is the coder's output.
 *
 * The prefix reconstructions are the running sums of each group's part (latents
 * `m_{g-1}..m_g - 1`). The parts come from one embedding bag over the selection's entries
 * sorted by token and group, one bag per (token, group): the decoder's work once, not once
 * per prefix.
 */
import type { LatentSelection } from '../activations/activation.js';
import { flatEntries } from '../activations/ragged.js';
import type { ProgramBuilder, SymScalar, SymTensor } from '../kernels/index.js';
import type { CoderParams, Matryoshka } from './structure.js';

/**
 * Each token's decoded part per group of latents, [N, G, D] (no bias), from a selection in
 * rows or ragged of `tokens` tokens: group g holds latents `prefixes[g-1] <= i < prefixes[g]`.
 */
export function groupParts(g: ProgramBuilder, params: CoderParams, kept: LatentSelection, tokens: SymScalar, prefixes: readonly number[]): SymTensor {
  const groups = prefixes.length + 1;
  const wDec = params.get('W_dec');
  const { rows, indices, values } = flatEntries(g, kept);
  // An entry's group: how many prefixes its latent is at or past.
  let group = indices.ge(prefixes[0]!).to('int64');
  for (const m of prefixes.slice(1)) group = group.add(indices.ge(m).to('int64'));
  // Bag (n, g) is number n * G + g; the entries sorted by bag list the bags in order.
  const bag = rows.mul(groups).add(group.named('entry_group')).named('entry_bag');
  const order = bag.sort().indices.named('by_bag');
  const counts = bag.bincount(tokens.mul(groups)).named('bag_sizes');
  const offsets = counts.cumsum(0).sub(counts).named('bag_offsets');
  const bagIndices = indices.select(order).named('bag_indices');
  const bagActs = values.select(order).typeAs(wDec).named('bag_acts');
  return g.embeddingBags(bagIndices, wDec, offsets, bagActs).unflatten(0, [tokens, groups]).named('group_parts');
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
