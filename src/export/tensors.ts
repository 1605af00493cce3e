/**
 * A coder's weights as the other libraries hold them (one program, built per layout): the
 * encoder as `W_enc` in either orientation, `b_enc`, `W_dec` [M, D], `b_dec`, `W_skip`
 * [D, D] (applied as x W_skip^T, as here), and a per-latent `threshold` [M] where the coder
 * encodes by one (a learned scalar threshold repeated for every latent).
 */
import { In, cachedProgram, defineProgram, runProgram, type SymTensor } from '../kernels/index.js';
import type { PyObject, Tensor } from '../bridge/ops.js';
import { structureTag, type CoderParamName, type CoderStructure } from '../math/structure.js';
import type { ExportCoder } from './format.js';

export interface TensorLayout {
  /** `W_enc` as [D, M] (x W_enc: SAELens) or as [M, D] (x W_enc^T, nn.Linear's: circuit-tracer). */
  encoder: 'in-by-latents' | 'latents-by-in';
  /** Thresholds below 0 raised to 0 (for a library whose jump passes negative values: the same encoding as relu first). */
  clampThreshold: boolean;
}

function exportProgram(s: CoderStructure, threshold: 'none' | 'per-latent' | 'learned', layout: TensorLayout) {
  const key = `export:${structureTag(s)}:${threshold}:${layout.encoder}:${layout.clampThreshold}`;
  const name = `export_${structureTag(s)}_${threshold.replace('-', '_')}_${layout.encoder === 'in-by-latents' ? 'dm' : 'md'}${layout.clampThreshold ? '_clamped' : ''}`;
  return cachedProgram(key, () =>
    defineProgram(name, { params: In.bundle<CoderParamName>() }, (g, { params }) => {
      const weight = params.get('encoder.weight');
      const bias = params.get('encoder.bias');
      const out: Record<string, SymTensor> = {
        W_enc: (layout.encoder === 'in-by-latents' ? weight.mT : weight).contiguous().named('W_enc'),
        b_enc: bias.contiguous().named('b_enc'),
        W_dec: params.get('W_dec').contiguous().named('W_dec_out'),
        b_dec: params.get('b_dec').contiguous().named('b_dec_out'),
      };
      if (s.skipConnection) out.W_skip = params.get('W_skip').contiguous().named('W_skip_out');
      if (threshold !== 'none') {
        // jumprelu's own [M]; a learned scalar (float32) for every latent, in the coder's dtype.
        let theta = threshold === 'per-latent' ? params.get('threshold') : g.zerosLike(bias).add(params.get('threshold').typeAs(bias));
        if (layout.clampThreshold) theta = theta.clamp(0, null);
        out.threshold = theta.contiguous().named('threshold_out');
      }
      return out;
    }),
  );
}

/** The coder's tensors in `layout`, with a threshold where its inference rule has one. */
export async function exportedTensors(c: ExportCoder, layout: TensorLayout): Promise<Record<string, Tensor>> {
  const threshold = c.rule.kind === 'jumprelu' ? c.rule.threshold : 'none';
  return runProgram(exportProgram(c.coder.structure, threshold, layout), { params: c.coder.params }) as Promise<Record<string, Tensor>>;
}

function crossLayerSourceProgram(s: CoderStructure, threshold: boolean) {
  return cachedProgram(`export_clt:${structureTag(s)}:${threshold}`, () =>
    defineProgram(`export_clt_${structureTag(s)}${threshold ? '_thr' : ''}`, { params: In.bundle<CoderParamName>() }, (_g, { params }) => {
      const out: Record<string, SymTensor> = {
        W_enc: params.get('encoder.weight').contiguous().named('W_enc'),
        b_enc: params.get('encoder.bias').contiguous().named('b_enc'),
        W_dec: params.get('W_dec').contiguous().named('W_dec_out'),
        b_dec: params.get('b_dec').contiguous().named('b_dec_out'),
      };
      // circuit-tracer's jump passes negative values: thresholds below 0 raised to 0 give relu first.
      if (threshold) out.threshold = params.get('threshold').clamp(0, null).contiguous().named('threshold_out');
      return out;
    }),
  );
}

/** A cross-layer transcoder's source i as circuit-tracer holds it: W_enc [M, D], b_enc, W_dec [M, n - i, D], b_dec (target i's), a per-latent threshold for a jumprelu CLT. */
export async function crossLayerSourceTensors(s: CoderStructure, source: PyObject, threshold: boolean): Promise<Record<string, Tensor>> {
  return runProgram(crossLayerSourceProgram(s, threshold), { params: source }) as Promise<Record<string, Tensor>>;
}
