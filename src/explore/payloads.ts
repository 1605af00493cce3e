/**
 * The explorer's data files, as the page reads them: shared by the server side (site.ts
 * makes them) and the browser app (app/ reads them). Types only: no Node or DOM here.
 */

/** A log10 firing-density histogram: half-decade bins from 1e-8 to 1, the dead apart. */
export interface DensityPayload {
  edges: number[];
  counts: number[];
  dead: number;
}

export interface OverviewPayload {
  title: string;
  cache: { model: string; dataset: string; split: string | null; rows: { start: number; end: number; of: number }; ctx_len: number; created: string };
  /** metrics.jsonl's lines (thinned to at most 2,000), or why there are none. */
  metrics: { lines: Record<string, number | string>[] | null; message: string | null };
  /** eval.json's metrics, when the run has one: the registry's overview columns, a row of formatted cells per coder. */
  eval: { columns: string[]; rows: { coder: string; cells: string[] }[] } | null;
  /** `targets`: a cross-layer transcoder's source, the layers its latents write to (this one first); null for a per-layer coder. */
  coders: { name: string; hookpoint: string; num_latents: number; d_in: number; k: number; tokens: number; density: DensityPayload; targets: string[] | null }[];
  /** Latents per latent data file. */
  chunk: number;
  has_logits: boolean;
  /** The served explorer runs typed prompts through the model (null: a static export, or no model attached). */
  live: LiveLimits | null;
}

/** What the served explorer takes of a typed prompt. */
export interface LiveLimits {
  max_chars: number;
  max_tokens: number;
  max_new_tokens: number;
}

/** POST api/prompt: a prompt to run through the model and one coder. */
export interface PromptRequest {
  text: string;
  coder: string;
}

/** Each token of the prompt and the coder's active latents there, as [latent, activation], largest first. */
export interface PromptReply {
  coder: string;
  tokens: number[];
  latents: [number, number][][];
}

/** POST api/steer: the prompt continued without and with a latent added (scale) or clamped. */
export interface SteerRequest {
  text: string;
  coder: string;
  latent: number;
  scale?: number;
  clamp?: number;
  max_new_tokens?: number;
}

export interface SteerReply {
  without: string;
  with: string;
}

/** What api/* answers instead when it cannot (a bad request, the model busy). */
export interface LiveError {
  error: string;
}

/** A coder's latent table: columns as base64 of little-endian arrays. */
export interface TablePayload {
  coder: string;
  num_latents: number;
  tokens: number;
  /** float32 columns. */
  frequency: string;
  max: string;
  mean: string;
  /** int32 [num_latents * 3]: the first 3 distinct tokens of each latent's top examples (-1 pads). */
  top_tokens: string;
}

/**
 * One example: its window's token ids (-1 outside the row) and this latent's nonzero
 * activations there, as [window index, activation] pairs (most of a window is zero).
 */
export interface ExamplePayload {
  row: number;
  position: number;
  activation: number;
  tokens: number[];
  acts: [number, number][];
}

export interface LatentPayload {
  id: number;
  count: number;
  frequency: number;
  max: number;
  mean: number;
  histogram: { range: number; counts: number[] };
  top: ExamplePayload[];
  intervals: { lo: number; hi: number; examples: ExamplePayload[] }[];
  logits: { top: [number, number][]; bottom: [number, number][] } | null;
  neighbours: [number, number][];
  /** A cross-layer transcoder source's latent: [target layer, decoder norm] per target, this layer first. */
  decoder_norms?: [string, number][];
}

/** A chunk of latents, packed (packing.ts); the page unpacks them into LatentPayloads. */
export interface LatentChunkPayload {
  coder: string;
  start: number;
  count: number;
  /** The coder's cached token count (a latent's frequency is its count over it). */
  tokens: number;
  /** Window layout: tokens before and after the example's own. */
  before: number;
  after: number;
  /** base64 of packLatents' bytes. */
  packed: string;
  /** A cross-layer transcoder source's chunk: each latent's decoder norm per target (`norms[latent][target]`). */
  decoder_norms?: { targets: string[]; norms: number[][] };
}

/** The cached rows' token ids, once for every example window: base64 of int32 [rows * ctx_len]. */
export interface TokensPayload {
  start_row: number;
  rows: number;
  ctx_len: number;
  ids: string;
}
