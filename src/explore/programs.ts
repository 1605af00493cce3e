/**
 * The latent cache's programs: what one batch adds to each latent's fixed-size state, on the
 * tensor side (no per-token bridge calls): firing counts, activation sums and maxima, a
 * 50-bin histogram, the top examples by activation, and a uniform reservoir of firings (the
 * interval samples are drawn from it), each example with its context window's activations.
 */
import { HOOK_INPUTS, In, cachedProgram, defineProgram, type ProgramBuilder, type SymBundle, type SymScalar, type SymTensor } from '../kernels/index.js';
import { encode } from '../math/sparse-coder.js';
import { structureTag as tag, type CoderParamName, type CoderStructure } from '../math/structure.js';

/** The cache's shape: what a latent keeps. */
export const LAYOUT = {
  /** Top examples by activation. */
  top: 20,
  /** A uniform sample of the latent's firings (reservoir by random keys). */
  reservoir: 50,
  /** Context window: tokens before and after an example. */
  before: 16,
  after: 4,
  /** Histogram bins over [0, R), R the power of two at or above the max activation. */
  bins: 50,
  /** Activation intervals the samples are sorted into, over [0, max]. */
  intervals: 10,
  perInterval: 5,
  /** Logit effects and neighbours kept per latent. */
  logits: 10,
  neighbours: 5,
} as const;

export const WINDOW = LAYOUT.before + 1 + LAYOUT.after;

/** The zeroed state of one coder's latents. */
export function stateProgram() {
  return cachedProgram('explore_state', () =>
    defineProgram('explore_state', { params: In.bundle<CoderParamName>() }, (g, { params }) => {
      const w = params.get('encoder.weight');
      const m = w.size(0);
      const kept = (slots: number, prefix: string): Record<string, SymTensor> => ({
        [`${prefix}_value`]: g.full([m, slots], -1, 'float32', w).named(`${prefix}_value`),
        [`${prefix}_token`]: g.full([m, slots], -1, 'int64', w).named(`${prefix}_token`),
        [`${prefix}_window`]: g.zeros([m, slots, WINDOW], { dtype: 'float32', device: w }).named(`${prefix}_window`),
      });
      const entries: Record<string, SymTensor> = {
        tokens: g.zeros([], { dtype: 'int64', device: w }).named('tokens'),
        count: g.zeros([m], { dtype: 'int64', device: w }).named('count'),
        act_sum: g.zeros([m], { dtype: 'float64', device: w }).named('act_sum'),
        act_max: g.zeros([m], { dtype: 'float32', device: w }).named('act_max'),
        hist: g.zeros([m, LAYOUT.bins], { dtype: 'int64', device: w }).named('hist'),
        hist_range: g.zeros([m], { dtype: 'float32', device: w }).named('hist_range'),
        ...kept(LAYOUT.top, 'top'),
        ...kept(LAYOUT.reservoir, 'sample'),
      };
      return { state: g.bundle(entries).named('state') };
    }),
  );
}

interface Firings {
  /** Per firing: its latent, activation (0 when it did not fire), batch position, global token index. */
  latent: SymTensor;
  act: SymTensor;
  position: SymTensor;
  token: SymTensor;
  fired: SymTensor;
}

/** What the merges read of the batch: its activations as a dense [tokens, latents] matrix. */
interface BatchView {
  dense: SymTensor;
  ctxLen: SymScalar;
  n: SymScalar;
}

/**
 * The activations [E, W] of the latents `latent` [E] around batch positions `position` [E]
 * (0 outside the row). The window's tokens are not kept: the cache stores the rows' token
 * ids once, and a reader finds them from the example's token index.
 */
function windows(g: ProgramBuilder, latent: SymTensor, position: SymTensor, batch: BatchView) {
  const offsets = g.arange(-LAYOUT.before, LAYOUT.after + 1, 1, position).named('offsets');
  const where = position.unsqueeze(1).add(offsets).named('window_positions');
  const inRow = position.mod(batch.ctxLen).unsqueeze(1).add(offsets).named('in_row');
  const valid = inRow.ge(0).and(inRow.lt(batch.ctxLen)).named('valid');
  const at = where.clamp(0, batch.n.sub(1)).named('at');
  return batch.dense.select2(at, latent.unsqueeze(1)).float().mul(valid).named('window_acts');
}

/**
 * Keys that order kept examples by (value desc, token asc) when taken highest first, as one
 * integer: the bits of a float32 at or above zero order like the float (an empty slot's -1
 * goes below them all), and the low 32 bits hold the token index, reversed.
 */
function orderKeys(values: SymTensor, tokens: SymTensor): SymTensor {
  return values.bitsAs('int32').to('int64').mul(2 ** 32).add(tokens.mod(2 ** 32).neg().add(2 ** 32 - 1)).named('order_keys');
}

/**
 * Merge this batch's candidates into a per-latent top-K held in `state` under `prefix`
 * (values, their token index, window activations); -1 marks an empty slot. Slots are
 * unordered while the pass runs (a new example takes the slot of the one it evicts, so kept
 * windows never move; the finish program sorts them). Only latents with a candidate above
 * their lowest kept value are touched, so once the slots fill up a batch costs little. What
 * is kept is the top K of everything seen by (value desc, token asc).
 */
function mergeTopK(
  g: ProgramBuilder,
  state: SymBundle,
  prefix: 'top' | 'sample',
  slots: number,
  candidate: { latent: SymTensor; value: SymTensor; token: SymTensor; position: SymTensor },
  batch: BatchView,
): void {
  const values = state.get(`${prefix}_value`);
  const tokens = state.get(`${prefix}_token`);
  const m = values.size(0);
  const useful = candidate.value.gt(values.amin(-1).select(candidate.latent)).nonzero().named('useful');
  const lat = candidate.latent.select(useful).named('candidate_latent');
  const val = candidate.value.select(useful).named('candidate_value');
  const tok = candidate.token.select(useful).named('candidate_token');
  // This batch's best `slots` per latent: grouped by latent, by value within (two stable
  // sorts; candidates come in token order, so ties stay in token order).
  const byValue = val.sort({ descending: true }).indices;
  const order = byValue.select(lat.select(byValue).sort().indices).named('order');
  const latSorted = lat.select(order).named('latents_sorted');
  const counts = latSorted.bincount(m);
  const starts = counts.cumsum(0).sub(counts).named('starts');
  const rank = g.arange(0, latSorted.size(0), 1, values).sub(starts.select(latSorted)).named('rank');
  const keep = rank.lt(slots).nonzero().named('keep');
  const keptLatent = latSorted.select(keep).named('kept_latent');
  const keptRank = rank.select(keep).named('kept_rank');
  const keptSource = order.select(keep).named('kept_source');
  // One row per touched latent: its slots, then this batch's candidates.
  const first = keptRank.eq(0).named('first');
  const row = first.to('int64').cumsum(0).sub(1).named('row');
  const touched = keptLatent.select(first.nonzero()).named('touched');
  const u = touched.size(0);
  const laid = (source: SymTensor, dtype: 'float32' | 'int64', name: string): SymTensor => {
    const t = g.full([u, slots], -1, dtype, values).named(name);
    t.setAt2_(row, keptRank, source);
    return t;
  };
  const rowValues = g.cat([values.select(touched), laid(val.select(keptSource), 'float32', 'batch_values')], 1).named('row_values');
  const rowTokens = g.cat([tokens.select(touched), laid(tok.select(keptSource), 'int64', 'batch_tokens')], 1).named('row_tokens');
  const rowSources = laid(keptSource, 'int64', 'batch_sources');
  const pick = orderKeys(rowValues, rowTokens).topk(slots, { dim: 1 }).indices.named('pick');
  // Old slots not picked are evicted; the j-th evicted slot of a row takes the row's j-th
  // new pick (both lists are row-major, with equal counts per row).
  const keptOld = g.zerosLike(values.select(touched)).named('kept_old');
  keptOld.scatterAdd_(1, pick.clamp(null, slots - 1), pick.lt(slots).to('float32'));
  const evicted = keptOld.eq(0).flatten().nonzero().named('evicted');
  const fresh = pick.ge(slots).flatten().nonzero().named('fresh');
  const freshRow = fresh.floorDiv(slots).named('fresh_row');
  const freshPick = pick.flatten().select(fresh).named('fresh_pick');
  const latentRow = touched.select(freshRow).named('latent_row');
  const slot = evicted.mod(slots).named('slot');
  const source = rowSources.select2(freshRow, freshPick.sub(slots)).named('fresh_source');
  values.setAt2_(latentRow, slot, rowValues.select2(freshRow, freshPick));
  tokens.setAt2_(latentRow, slot, rowTokens.select2(freshRow, freshPick));
  state.get(`${prefix}_window`).setAt2_(latentRow, slot, windows(g, lat.select(source), candidate.position.select(useful).select(source), batch));
}

/** One batch into one coder's latent state (inside the clean forward's hook). */
export function exploreHookProgram(s: CoderStructure) {
  const signature = {
    ...HOOK_INPUTS,
    params: In.bundle<CoderParamName>(),
    k: In.scalar(),
    state: In.bundle(),
    seed: In.scalar(),
    /** The global index of the batch's first token. */
    tokenBase: In.scalar(),
    ctxLen: In.scalar(),
  };
  return cachedProgram(`explore_hook:${tag(s)}`, () =>
    defineProgram(`explore_hook_${tag(s)}`, signature, (g, { inputs, outputs, mask, params, k, state, seed, tokenBase, ctxLen }) => {
      const w = params.get('encoder.weight');
      // Every position of the batch (so positions line up with tokens); special and excluded
      // tokens' activations count as zero.
      const x = (s.transcode ? inputs : outputs).flatten(0, 1).typeAs(w).named('x');
      const enc = encode(g, params, x, k, s, 'index_add', 'infer');
      const { kept } = g.ifElse(g.isNone(mask), () => ({ kept: g.onesLike(x.narrow(1, 0, 1)) }), () => ({ kept: mask.unsqueeze(1).typeAs(x) }));
      const acts = enc.topActs.mul(kept).named('acts');
      const indices = enc.topIndices;
      const n = acts.size(0);
      const kk = acts.size(1);
      state.get('tokens').add_(kept.sum().to('int64'));
      const f: Firings = {
        latent: indices.flatten().named('latent'),
        act: acts.flatten().named('act'),
        position: g.arange(0, n, 1, acts).repeatInterleave(kk).named('position'),
        token: g.arange(0, n, 1, acts).repeatInterleave(kk).add(tokenBase).named('token'),
        fired: acts.flatten().gt(0).named('fired'),
      };
      // Counts, sums and maxima.
      state.get('count').indexAdd_(0, f.latent, f.fired.to('int64'));
      state.get('act_sum').indexAdd_(0, f.latent, f.act.to('float64'));
      state.get('act_max').scatterMax_(0, f.latent, f.act);
      // Histogram over [0, R): when a latent's max passes R, R doubles (to the next power of
      // two at or above it) and the old bins merge in pairs, so the counts stay exact.
      const range = state.get('hist_range');
      const batchMax = g.zerosLike(range).scatterMax_(0, f.latent, f.act).named('batch_max');
      const needed = g.where(batchMax.gt(0), batchMax.log2().ceil().exp2(), 0).named('needed');
      const grown = range.maximum(needed).named('grown');
      const doublings = g.where(range.gt(0), grown.div(g.where(range.gt(0), range, 1)).log2().round(), 0).to('int64').named('doublings');
      const hist = state.get('hist');
      const merged = g.zerosLike(hist).scatterAdd_(1, g.arange(0, LAYOUT.bins, 1, hist).unsqueeze(0).shiftRight(doublings.unsqueeze(1)), hist).named('merged');
      hist.copy_(merged);
      range.copy_(grown);
      const bin = f.act.mul(LAYOUT.bins).div(range.select(f.latent).clamp(1e-30, null)).floor().clamp(0, LAYOUT.bins - 1).to('int64').named('bin');
      hist.reshape(-1).indexAdd_(0, f.latent.mul(LAYOUT.bins).add(bin), f.fired.to('int64'));
      // Top examples by activation, and a uniform reservoir of firings by random key.
      // The windows read the batch's activations densely: the encoder's pre-activations
      // [tokens, latents] are not needed any more, so they are zeroed and take the selected
      // activations (a fresh matrix would cost its allocation every batch).
      // Added, not set: a selection's unused slots (value 0) may repeat an index.
      const dense = enc.preActs.zero_().named('dense');
      dense.scatterAdd_(1, indices, acts.typeAs(dense));
      const batch: BatchView = { dense, ctxLen, n };
      const notFired = f.fired.not();
      mergeTopK(g, state, 'top', LAYOUT.top, { latent: f.latent, value: g.where(notFired, -1, f.act), token: f.token, position: f.position }, batch);
      const sampleKeys = f.act.randomLike(seed).named('sample_keys');
      mergeTopK(g, state, 'sample', LAYOUT.reservoir, { latent: f.latent, value: g.where(notFired, -1, sampleKeys), token: f.token, position: f.position }, batch);
      return { metrics: {} };
    }),
  );
}

/**
 * After the pass: what each latent writes into the logits (its decoder row times the
 * unembedding, no final norm: the `LAYOUT.logits` highest and lowest tokens), and its nearest
 * latents by the cosine similarity of decoder rows (itself left out); in chunks of latents,
 * into the state.
 */
export function finishProgram(withLogits: boolean) {
  const signature = { params: In.bundle<CoderParamName>(), state: In.bundle(), unembed: In.optionalTensor(), chunk: In.scalar() };
  return cachedProgram(`explore_finish:${withLogits}`, () =>
    defineProgram(`explore_finish${withLogits ? '_logits' : ''}`, signature, (g, { params, state, unembed, chunk }) => {
      const wDec = params.get('W_dec').float().named('W_dec');
      const m = wDec.size(0);
      const chunks = m.add(chunk).sub(1).floorDiv(chunk);
      if (withLogits) {
        const wU = unembed.float().named('W_U');
        const n = LAYOUT.logits;
        const out = {
          logit_top_id: g.zeros([m, n], { dtype: 'int64', device: wDec }),
          logit_top_value: g.zeros([m, n], { dtype: 'float32', device: wDec }),
          logit_bottom_id: g.zeros([m, n], { dtype: 'int64', device: wDec }),
          logit_bottom_value: g.zeros([m, n], { dtype: 'float32', device: wDec }),
        };
        g.forRange(chunks, (i) => {
          const start = i.mul(chunk);
          const length = g.min(chunk, m.sub(start));
          const effects = wDec.narrow(0, start, length).matmul(wU.mT).named('effects');
          const top = effects.topk(n, { sorted: true });
          const bottom = effects.bottomk(n);
          out.logit_top_id.narrow(0, start, length).copy_(top.indices);
          out.logit_top_value.narrow(0, start, length).copy_(top.values);
          out.logit_bottom_id.narrow(0, start, length).copy_(bottom.indices);
          out.logit_bottom_value.narrow(0, start, length).copy_(bottom.values);
        });
        for (const [key, t] of Object.entries(out)) state.set(key, t.named(key));
      }
      const unit = wDec.div(wDec.norm(1, true).add(1e-12)).named('unit');
      const n = LAYOUT.neighbours;
      const ids = g.zeros([m, n], { dtype: 'int64', device: unit }).named('neighbour_id');
      const sims = g.zeros([m, n], { dtype: 'float32', device: unit }).named('neighbour_similarity');
      g.forRange(chunks, (i) => {
        const start = i.mul(chunk);
        const length = g.min(chunk, m.sub(start));
        const cos = unit.narrow(0, start, length).matmul(unit.mT).named('cosine');
        cos.scatter_(1, g.arange(start, start.add(length), 1, unit).unsqueeze(1), g.full([length, 1], -Infinity, 'float32', unit));
        const near = cos.topk(n, { sorted: true });
        ids.narrow(0, start, length).copy_(near.indices);
        sims.narrow(0, start, length).copy_(near.values);
      });
      state.set('neighbour_id', ids);
      state.set('neighbour_similarity', sims);
      // Each latent's examples, highest first (the pass keeps them unordered).
      for (const prefix of ['top', 'sample'] as const) {
        const values = state.get(`${prefix}_value`);
        const tokens = state.get(`${prefix}_token`);
        const windowActs = state.get(`${prefix}_window`);
        const order = orderKeys(values, tokens).sort({ dim: 1, descending: true }).indices.named('order');
        const rows = g.arange(0, m, 1, values).unsqueeze(1).named('rows');
        const sortedWindows = windowActs.select2(rows, order).named('sorted_windows');
        values.copy_(values.gather(1, order));
        tokens.copy_(tokens.gather(1, order));
        windowActs.copy_(sortedWindows);
      }
      // The token index of each latent's top example (-1 when it never fired), for the table.
      state.set('top_first_token', state.get('top_token').narrow(1, 0, 1).reshape(-1).named('top_first_token'));
      return { done: true };
    }),
  );
}

/** A cross-layer transcoder source's decoder norm per target [M, T] into its explore state (saved with it as `decoder_norms`). */
export function decoderNormsProgram() {
  return cachedProgram('explore_decoder_norms', () =>
    defineProgram('explore_decoder_norms', { state: In.bundle(), norms: In.tensor() }, (_g, { state, norms }) => {
      state.set('decoder_norms', norms.float().contiguous().named('decoder_norms'));
      return { done: true };
    }),
  );
}

/**
 * The served explorer's prompt: encode every position of a typed prompt as the cache does
 * (inference encode), and keep [acts | indices] side by side ([tokens, 2k], float32) under
 * `keepKey` for the server to read in one transfer.
 */
export function liveEncodeHookProgram(s: CoderStructure) {
  return cachedProgram(`explore_live:${tag(s)}`, () =>
    defineProgram(`explore_live_${tag(s)}`, { ...HOOK_INPUTS, params: In.bundle<CoderParamName>(), k: In.scalar(), keepKey: In.scalar<string>() }, (g, { inputs, outputs, params, k, keepKey }) => {
      const w = params.get('encoder.weight');
      const x = (s.transcode ? inputs : outputs).flatten(0, 1).typeAs(w).named('x');
      const enc = encode(g, params, x, k, s, 'index_add', 'infer');
      return { keep: g.dictOf(keepKey, g.cat([enc.topActs.float(), enc.topIndices.float()], 1).named('live_latents')), metrics: {} };
    }),
  );
}
