/**
 * Cross-layer transcoders (CLTs): over a contiguous run of n layers, source layer i's encoder
 * reads that layer's MLP input x_i and its latents f_i write, through their own decoders, to the
 * MLP outputs of layer i and every later one. Source i holds `encoder.weight` [M, D],
 * `encoder.bias` [M], its activation's own tensors, `W_dec` [M, n - i, D] (target i + t at t,
 * circuit-tracer's layout) and `b_dec` [D], the bias of target i:
 *
 *   y_hat_j = b_dec_j + sum over i <= j of f_i @ W_dec_i[:, j - i, :]
 *
 * The loss is the sum over targets of each target's fvu (||y_j - y_hat_j||^2 over y_j's own
 * total variance), as EleutherAI's clt-training fork trains them; AuxK is per source: its dead
 * latents predict the residual of its own target through W_dec_i[:, 0, :]. With one target per
 * source (no cross-layer decoders) every term is a per-layer transcoder's, op for op.
 * Graph only: the programs are in src/coder/cross-layer-programs.ts.
 */
import type { ProgramBuilder, SymScalar, SymTensor } from '../kernels/index.js';
import { activation, type ActivationParamName, type LatentSelection } from '../activations/index.js';
import { auxk, decodeRows, encode, selectionOf, REFERENCE_LOSSES, type EncoderOutput, type LossOptions } from './sparse-coder.js';
import type { CoderParams, CoderStructure } from './structure.js';

/** What a CLT's forward gives per source (its selection) and per target (reconstruction, losses). */
export interface CrossLayerForward {
  encoded: EncoderOutput[];
  kept: LatentSelection[];
  /** Per target j: y_hat_j, fvu_j, and source j's AuxK loss (0 without dead latents). */
  recon: SymTensor[];
  fvu: SymTensor[];
  auxkLoss: SymTensor[];
  /** Per source, the activation's differentiable L0 estimate where it trains towards one (jumprelu). */
  l0: (SymTensor | undefined)[];
  /** The loss's reconstruction part ({@link crossLayerReconLoss}). */
  reconLoss: SymTensor;
}

/** Each target's loss parts: its fvu, squared error and total variance. */
export interface TargetErrors {
  fvu: SymTensor[];
  squaredError: SymTensor[];
  totalVariance: SymTensor[];
}

/**
 * A CLT's reconstruction loss over its targets. `fvu`: the sum of each target's fvu, as
 * EleutherAI's clt-training fork trains (every layer counts alike, whatever its scale).
 * `mse`: the targets' summed squared error over their summed total variance (the fvu of the
 * targets side by side: each weighted by its variance); `totalVarianceAll` gives the sum when
 * some targets are elsewhere (another rank's).
 */
export function crossLayerReconLoss(t: TargetErrors, mode: 'fvu' | 'mse', totalVarianceAll?: SymTensor): SymTensor {
  const sum = (ts: readonly SymTensor[]): SymTensor => ts.slice(1).reduce((a, b) => a.add(b), ts[0]!);
  if (mode === 'fvu') return sum(t.fvu).named('summed_fvu');
  return sum(t.squaredError).div(totalVarianceAll ?? sum(t.totalVariance)).named('summed_mse');
}

/** `t[:, at, :]`: one target's slice of a source's [N, n - i, D] contributions or [M, n - i, D] decoders. */
export const targetAt = (t: SymTensor, at: number): SymTensor => t.narrow(1, at, 1).squeeze(1);

/** Every source's contributions to its targets, [N, n - i, D] each, from one sparse product per source. */
export function crossLayerContributions(g: ProgramBuilder, sources: readonly CoderParams[], kept: readonly LatentSelection[], backward: LossOptions['sparseBackward']): SymTensor[] {
  return sources.map((p, i) => {
    const wDec = p.get('W_dec');
    // The targets side by side: one row of (n - i) * D per latent.
    const flat = decodeRows(g, wDec.flatten(1, 2).named(`W_dec_flat_${i}`), kept[i]!, backward);
    return flat.unflatten(1, [wDec.size(1), wDec.size(2)]).named(`contributions_${i}`);
  });
}

/**
 * The reconstructions: target j starts from its own source's decode plus b_dec_j (a per-layer
 * transcoder's order), then adds the earlier sources' contributions, oldest first.
 */
export function crossLayerRecon(sources: readonly CoderParams[], contributions: readonly SymTensor[]): SymTensor[] {
  return sources.map((p, j) => {
    let recon = targetAt(contributions[j]!, 0).add(p.get('b_dec'));
    for (let i = 0; i < j; i++) recon = recon.add(targetAt(contributions[i]!, j - i));
    return recon.named(`recon_${j}`);
  });
}

/** Each source's encoder output, its selection, and its activation's L0 estimate where it trains towards one (jumprelu); `names[i]` names source i's tensors (its index by default). */
export function crossLayerEncode(
  g: ProgramBuilder,
  sources: readonly CoderParams[],
  xs: readonly SymTensor[],
  k: SymScalar | number,
  s: CoderStructure,
  backward: LossOptions['sparseBackward'],
  names: readonly number[] = sources.map((_, i) => i),
): { encoded: EncoderOutput[]; kept: LatentSelection[]; l0: (SymTensor | undefined)[] } {
  const encoded = sources.map((p, i) => encode(g, p, xs[i]!, k, s, backward));
  const kept = encoded.map(selectionOf);
  const act = activation(s.activation);
  const l0 = sources.map((p, i) => {
    if (!act.l0 || s.bandwidth === undefined) return undefined;
    const own = Object.fromEntries(act.params.map((a) => [a.name, p.get(a.name)])) as Record<ActivationParamName, SymTensor>;
    return act.l0(g, kept[i]!, own, xs[i]!.size(0), s.bandwidth).named(`l0_${names[i]}`);
  });
  return { encoded, kept, l0 };
}

/**
 * The CLT's training forward over n sources: encode each x_i with the coder's activation,
 * decode every target, and the per-target fvu and per-source AuxK losses.
 */
export function crossLayerForward(
  g: ProgramBuilder,
  sources: readonly CoderParams[],
  xs: readonly SymTensor[],
  ys: readonly SymTensor[],
  deadMasks: readonly (SymTensor | undefined)[],
  k: SymScalar | number,
  s: CoderStructure,
  losses: LossOptions = REFERENCE_LOSSES,
): CrossLayerForward {
  const backward = losses.sparseBackward ?? 'index_add';
  const { encoded, kept, l0 } = crossLayerEncode(g, sources, xs, k, s, backward);
  const recon = crossLayerRecon(sources, crossLayerContributions(g, sources, kept, backward));
  const targets = targetLosses(
    g,
    sources.map((p, j) => ({ index: j, y: ys[j]!, recon: recon[j]!, preActs: encoded[j]!.preActs, deadMask: deadMasks[j], ownDecoder: targetAt(p.get('W_dec'), 0).named('W_dec_own'), bDec: p.get('b_dec') })),
    losses,
  );
  return { encoded, kept, recon, fvu: targets.fvu, auxkLoss: targets.auxkLoss, l0, reconLoss: crossLayerReconLoss(targets, losses.crossLayerLoss ?? 'fvu') };
}

/**
 * A rank's share of a CLT with distributed modules: the layers it owns, each as a source
 * (its encoder, `params[t]` for layer `owned[t]`) and as a target (its bias `b_dec` and its
 * decoders from every source i <= j, `W_dec` [j + 1, M, D] with source i's at i). Target j is
 * rebuilt from every source's selection (`codes`, all n of them, shared across the ranks) in
 * a single process's order: its own source's decode plus b_dec_j, then the earlier sources'
 * oldest first. AuxK as in {@link crossLayerForward}: source j's dead latents through its
 * own-layer decoder, which its owner holds.
 */
export function crossLayerShardLosses(
  g: ProgramBuilder,
  shard: { owned: readonly number[]; params: readonly CoderParams[]; ys: readonly SymTensor[]; encoded: readonly EncoderOutput[]; deadMasks: readonly (SymTensor | undefined)[] },
  codes: readonly LatentSelection[],
  losses: LossOptions = REFERENCE_LOSSES,
): TargetErrors & { recon: SymTensor[]; auxkLoss: SymTensor[] } {
  const backward = losses.sparseBackward ?? 'index_add';
  const recon: SymTensor[] = [];
  const targets = shard.owned.map((j, t) => {
    const p = shard.params[t]!;
    const wIn = p.get('W_dec');
    const from = (i: number): SymTensor => wIn.narrow(0, i, 1).squeeze(0).named(`W_dec_${i}_to_${j}`);
    let r = decodeRows(g, from(j), codes[j]!, backward).add(p.get('b_dec'));
    for (let i = 0; i < j; i++) r = r.add(decodeRows(g, from(i), codes[i]!, backward));
    recon.push(r.named(`recon_${j}`));
    return { index: j, y: shard.ys[t]!, recon: r, preActs: shard.encoded[t]!.preActs, deadMask: shard.deadMasks[t], ownDecoder: from(j), bDec: p.get('b_dec') };
  });
  return { recon, ...targetLosses(g, targets, losses) };
}

/**
 * Each target's losses from its reconstruction: its squared error, total variance and fvu, and
 * its source's AuxK loss (the dead latents predict the target's residual through the source's
 * own-layer decoder, `ownDecoder`).
 */
function targetLosses(
  g: ProgramBuilder,
  targets: readonly { index: number; y: SymTensor; recon: SymTensor; preActs: SymTensor; deadMask: SymTensor | undefined; ownDecoder: SymTensor; bDec: SymTensor }[],
  losses: LossOptions,
): TargetErrors & { auxkLoss: SymTensor[] } {
  const backward = losses.sparseBackward ?? 'index_add';
  const out: TargetErrors & { auxkLoss: SymTensor[] } = { fvu: [], squaredError: [], totalVariance: [], auxkLoss: [] };
  for (const { index: j, y, recon, preActs, deadMask, ownDecoder, bDec } of targets) {
    const totalVariance = y.sub(y.mean(0)).pow(2).sum().named(`total_variance_${j}`);
    const e = y.sub(recon).named(`e_${j}`);
    out.auxkLoss.push(auxk(g, { preActs, e, y, totalVariance, deadMask, like: e }, (dead) => {
      const eHat = decodeRows(g, ownDecoder, dead, backward);
      return losses.auxkBias ? eHat.add(bDec) : eHat;
    }));
    const sq = e.pow(2).sum().named(`squared_error_${j}`);
    out.squaredError.push(sq);
    out.totalVariance.push(totalVariance);
    out.fvu.push(sq.div(totalVariance).named(`fvu_${j}`));
  }
  return out;
}
