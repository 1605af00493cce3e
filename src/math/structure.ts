/**
 * What of a coder's config shapes its programs, and its parameters by the names of
 * `sae.safetensors` (the reference's `SparseCoder` module attributes, sparsify/sparse_coder.py,
 * plus any its activation adds).
 */
import { activation, learnsThreshold, type ActivationName, type ActivationParamName } from '../activations/index.js';
import type { SymBundle } from '../kernels/index.js';
import { matryoshkaWeightsOf } from '../config/sparse-coder.js';

/** Parameter names, exactly as in `sae.safetensors`. */
export type CoderParamName = 'encoder.weight' | 'encoder.bias' | 'W_dec' | 'b_dec' | 'W_skip' | ActivationParamName | CoderBufferName;
/** Tensors a coder keeps and saves but does not train. */
export type CoderBufferName = 'threshold';
export type CoderParams = SymBundle<CoderParamName>;

/** The parts of a coder's config that change the shape of its programs. */
export interface CoderStructure {
  activation: ActivationName;
  transcode: boolean;
  skipConnection: boolean;
  multiTopk: boolean;
  normalizeDecoder: boolean;
  /** It learns an inference threshold (a `threshold` scalar in the coder file). */
  inferenceThreshold: boolean;
  /** The pseudo-derivatives' bandwidth of an activation with its own encoder (jumprelu's). */
  bandwidth?: number;
  /** Matryoshka training: the latent-count prefixes and the loss weight of each prefix and, last, of all latents. */
  matryoshka?: Matryoshka;
}

/** A Matryoshka loss: the reconstructions from latents `0..prefixes[i]-1` and from all, weighed. */
export interface Matryoshka {
  prefixes: readonly number[];
  /** One more than the prefixes. */
  weights: readonly number[];
}

/** The structure of a coder config (any object with the config's fields; an unset inference threshold is the activation's default). */
export function structureOf(
  cfg: Omit<CoderStructure, 'inferenceThreshold' | 'bandwidth' | 'matryoshka'> & {
    inferenceThreshold?: boolean | undefined;
    jumpreluBandwidth?: number;
    matryoshkaPrefixes?: readonly number[];
    matryoshkaWeights?: readonly number[] | undefined;
  },
): CoderStructure {
  const { activation: name, transcode, skipConnection, multiTopk, normalizeDecoder } = cfg;
  const s: CoderStructure = { activation: name, transcode, skipConnection, multiTopk, normalizeDecoder, inferenceThreshold: learnsThreshold(name, cfg.inferenceThreshold) };
  if (activation(name).encoder && cfg.jumpreluBandwidth !== undefined) s.bandwidth = cfg.jumpreluBandwidth;
  const prefixes = cfg.matryoshkaPrefixes ?? [];
  if (prefixes.length) s.matryoshka = { prefixes, weights: matryoshkaWeightsOf({ matryoshkaPrefixes: prefixes, matryoshkaWeights: cfg.matryoshkaWeights }) };
  return s;
}

/** Identifier-safe spelling of a number (part of program names). */
const idNumber = (x: number): string => String(x).replace(/[^0-9a-z]/gi, '_');

/** A short, identifier-safe name for a structure (part of program names). */
export function structureTag(s: CoderStructure): string {
  return `${s.activation}_${s.transcode ? 'tc' : 'sae'}${s.skipConnection ? '_skip' : ''}${s.multiTopk ? '_mtk' : ''}${s.normalizeDecoder ? '_norm' : ''}${s.inferenceThreshold ? '_thr' : ''}${s.bandwidth !== undefined ? `_bw${idNumber(s.bandwidth)}` : ''}${s.matryoshka ? `_mat${s.matryoshka.prefixes.join('_')}_w${s.matryoshka.weights.map(idNumber).join('_')}` : ''}`;
}

/** Parameter names of a coder with this structure, in the reference's order (`SparseCoder.parameters()`), then its activation's. */
export function paramNames(s: Pick<CoderStructure, 'skipConnection' | 'activation'>): CoderParamName[] {
  return ['encoder.weight', 'encoder.bias', 'W_dec', 'b_dec', ...(s.skipConnection ? (['W_skip'] as const) : []), ...activation(s.activation).params.map((p) => p.name)];
}

/** The tensors a coder with this structure keeps without training them (after its parameters in the file). */
export function bufferNames(s: Pick<CoderStructure, 'inferenceThreshold'>): CoderBufferName[] {
  return s.inferenceThreshold ? ['threshold'] : [];
}

/** Everything `sae.safetensors` holds for this structure: its parameters, then its buffers. */
export function storedNames(s: Pick<CoderStructure, 'skipConnection' | 'activation' | 'inferenceThreshold'>): CoderParamName[] {
  return [...paramNames(s), ...bufferNames(s)];
}

/** The >= 2-D parameters (Muon updates these; Adam the rest). */
export const MATRIX_PARAMS: ReadonlySet<CoderParamName> = new Set(['encoder.weight', 'W_dec', 'W_skip']);
