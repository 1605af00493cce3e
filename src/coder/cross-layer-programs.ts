/**
 * The programs behind the CrossLayerTranscoder API, built once per structure and number of
 * source layers: init, the training forward with its losses, encode and decode. Sources travel
 * as bundles `p0..p{n-1}`, their inputs `x0..`, targets `y0..`.
 */
import { asRows } from '../activations/index.js';
import { In, cachedProgram, defineProgram, type InputSpec, type SymBundle, type SymScalar, type SymTensor } from '../kernels/index.js';
import { crossLayerContributions, crossLayerForward, crossLayerRecon } from '../math/cross-layer.js';
import * as sc from '../math/sparse-coder.js';
import { storedNames, structureTag as tag, type CoderParamName, type CoderParams, type CoderStructure } from '../math/structure.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const named = <S extends InputSpec>(prefix: string, n: number, spec: () => S): Record<string, S> => Object.fromEntries(range(n).map((i) => [`${prefix}${i}`, spec()]));
const sources = (io: Record<string, unknown>, n: number): CoderParams[] => range(n).map((i) => io[`p${i}`] as CoderParams);
const tensors = (io: Record<string, unknown>, prefix: string, n: number): SymTensor[] => range(n).map((i) => io[`${prefix}${i}`] as SymTensor);

/**
 * A new CLT's sources: each a transcoder's parameters as `SparseCoder.__init__` makes them
 * (seeded once, then drawn source after source), with W_dec widened to [M, n - i, D] of
 * zeros (a transcoder's decoder starts at zero; the cross-layer ones too).
 */
export function crossLayerInitProgram(s: CoderStructure, n: number) {
  return cachedProgram(`clt_init:${tag(s)}:${n}`, () =>
    defineProgram(
      `clt_init_${tag(s)}_${n}`,
      { seed: In.scalar<number | null>(), dIn: In.scalar(), numLatents: In.scalar(), device: In.object<string>(), dtype: In.object<string>() },
      (g, inputs) => {
        const out: Record<string, SymBundle<CoderParamName>> = {};
        for (const i of range(n)) {
          const p = sc.initParams(g, s, { ...inputs, seed: i === 0 ? inputs.seed : null });
          const wDec = g.zeros([inputs.numLatents, n - i, inputs.dIn], { dtype: inputs.dtype, device: inputs.device }).named(`W_dec_${i}`);
          wDec.requiresGrad_();
          const entries: Record<string, SymTensor> = {};
          for (const name of storedNames(s)) entries[name] = name === 'W_dec' ? wDec : p.get(name as CoderParamName);
          out[`p${i}`] = g.bundle(entries as Record<CoderParamName, SymTensor>).named(`source_${i}`);
        }
        return out;
      },
    ),
  );
}

/** The training forward: per target its reconstruction, fvu and (its source's) AuxK, the selections as rows, and the summed fvu. */
export function crossLayerForwardProgram(s: CoderStructure, n: number, losses: sc.LossOptions = sc.REFERENCE_LOSSES) {
  return cachedProgram(`clt_forward:${tag(s)}:${n}${sc.lossTag(losses)}`, () =>
    defineProgram(
      `clt_forward_${tag(s)}_${n}${sc.lossTag(losses)}`,
      { ...named('p', n, () => In.bundle<CoderParamName>()), ...named('x', n, () => In.tensor()), ...named('y', n, () => In.tensor()), ...named('deadMask', n, () => In.optionalTensor({ dtype: 'bool' })), k: In.scalar() },
      (g, io) => {
        const ps = sources(io, n);
        const w = ps[0]!.get('encoder.weight');
        const xs = tensors(io, 'x', n).map((x, i) => x.typeAs(w).named(`x_in_${i}`));
        const ys = tensors(io, 'y', n).map((y, i) => y.typeAs(w).named(`y_in_${i}`));
        const out = crossLayerForward(g, ps, xs, ys, tensors(io, 'deadMask', n), io.k as SymScalar, s, losses);
        const result: Record<string, SymTensor> = {};
        out.kept.forEach((kept, i) => {
          const rows = asRows(g, kept, xs[i]!.size(0));
          result[`acts${i}`] = rows.values;
          result[`indices${i}`] = rows.indices;
          result[`recon${i}`] = out.recon[i]!;
          result[`fvu${i}`] = out.fvu[i]!;
          result[`auxk${i}`] = out.auxkLoss[i]!;
        });
        result.loss = out.reconLoss;
        return result;
      },
      { grad: 'input' },
    ),
  );
}

/** Encode every source's input as inference does: the selections as rows. */
export function crossLayerEncodeProgram(s: CoderStructure, n: number) {
  return cachedProgram(`clt_encode:${tag(s)}:${n}`, () =>
    defineProgram(`clt_encode_${tag(s)}_${n}`, { ...named('p', n, () => In.bundle<CoderParamName>()), ...named('x', n, () => In.tensor()), k: In.scalar() }, (g, io) => {
      const ps = sources(io, n);
      const result: Record<string, SymTensor> = {};
      tensors(io, 'x', n).forEach((x, i) => {
        const xIn = x.typeAs(ps[i]!.get('encoder.weight')).named(`x_in_${i}`);
        const enc = sc.encode(g, ps[i]!, xIn, io.k as SymScalar, s, 'index_add', 'infer');
        result[`acts${i}`] = enc.topActs;
        result[`indices${i}`] = enc.topIndices;
      });
      return result;
    }),
  );
}

/** Decode every target from every source's selection (rows). */
export function crossLayerDecodeProgram(s: CoderStructure, n: number) {
  return cachedProgram(`clt_decode:${tag(s)}:${n}`, () =>
    defineProgram(`clt_decode_${tag(s)}_${n}`, { ...named('p', n, () => In.bundle<CoderParamName>()), ...named('acts', n, () => In.tensor()), ...named('indices', n, () => In.tensor({ dtype: 'int64' })) }, (g, io) => {
      const ps = sources(io, n);
      const kept = range(n).map((i) => ({ values: io[`acts${i}`] as SymTensor, indices: io[`indices${i}`] as SymTensor }));
      const recon = crossLayerRecon(ps, crossLayerContributions(g, ps, kept, 'index_add'));
      return Object.fromEntries(recon.map((r, i) => [`recon${i}`, r]));
    }),
  );
}

/**
 * A source's tensors as a per-layer coder's, for the tools that take one: `W_dec` [M, D] its
 * decoder to one target (`target`, counted from the source's own layer), or with `sum` the
 * sum over its targets (the latent's whole write to the residual stream); and each latent's
 * decoder norm per target [M, n - i] (float32).
 */
export function crossLayerSourceViewProgram(s: CoderStructure, decoder: 'sum' | 'target') {
  return cachedProgram(`clt_view:${tag(s)}:${decoder}`, () =>
    defineProgram(`clt_view_${tag(s)}_${decoder}`, { p: In.bundle<CoderParamName>(), target: In.scalar() }, (g, io) => {
      const wDec = io.p.get('W_dec');
      const own = decoder === 'sum' ? wDec.sum(1) : wDec.narrow(1, io.target, 1).squeeze(1);
      const entries: Record<string, SymTensor> = {};
      for (const name of storedNames(s)) entries[name] = name === 'W_dec' ? own.named('W_dec_view') : io.p.get(name as CoderParamName);
      return { view: g.bundle(entries as Record<CoderParamName, SymTensor>).named('view'), norms: wDec.detach().float().norm(2).named('decoder_norms') };
    }),
  );
}
