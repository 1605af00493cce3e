/**
 * What an export format is to the rest of the code: the contract each file of this folder
 * fills. A format writes a run's coders as another library's files; it says first, in one
 * line, what it cannot hold.
 */
import type { CrossLayerTranscoder } from '../coder/cross-layer.js';
import type { SparseCoder } from '../coder/sparse-coder.js';

/**
 * How a coder encodes at inference (`SparseCoder.encode` without a mode), which decides the
 * class another library loads it as.
 * - `topk`: the k largest relu'd pre-activations of each token.
 * - `jumprelu`: each latent above its own threshold (a jumprelu coder's thresholds, or a
 *   learned inference threshold, the same for every latent).
 * - `own`: a selection of its activation's own that no other library encodes with (groupmax,
 *   batchtopk without a learned threshold); `canLearnThreshold` says whether one would help.
 */
export type InferenceRule =
  | { kind: 'topk'; k: number }
  | { kind: 'jumprelu'; threshold: 'per-latent' | 'learned' }
  | { kind: 'own'; activation: string; canLearnThreshold: boolean };

/** Why a coder of an activation whose selection a format lacks cannot be written (one line). */
export function ownSelectionMessage(c: { name: string; rule: InferenceRule }, library: string, exportsAs: string): string {
  const rule = c.rule as Extract<InferenceRule, { kind: 'own' }>;
  const hint = rule.canLearnThreshold ? `; with a learned inference threshold (--inference_threshold, learned after threshold_start_step steps) it exports as ${exportsAs}` : '';
  return `coder ${c.name}: ${library} has no class for ${rule.activation}'s selection${hint}`;
}

/** One coder of the run being exported. */
export interface ExportCoder {
  /** Its name in the run (a hookpoint, or `hookpoint/configuration` in a sweep). */
  name: string;
  hookpoint: string;
  coder: SparseCoder;
  rule: InferenceRule;
}

/** The run being exported: its coders and what its record says of the model and data. */
export interface ExportRun {
  dir: string;
  model: string | undefined;
  dataset: string | undefined;
  ctxLen: number | undefined;
  coders: readonly ExportCoder[];
}

/** A cross-layer transcoder being exported: its folder, the model its run names, the CLT and how it encodes. */
export interface ExportCrossLayer {
  dir: string;
  model: string | undefined;
  clt: CrossLayerTranscoder;
  rule: InferenceRule;
}

/** One export format: its name, what it writes, its checks and its writer. */
export interface ExportFormat<N extends string = string> {
  /** As on the command line (`--format NAME`). */
  readonly name: N;
  /** What it writes, in a few words (for --help). */
  readonly summary: string;
  /** Why this run cannot be written in this format (one line naming the coder and what the format lacks), or undefined. */
  check(run: ExportRun): string | undefined;
  /** Write the run into the empty directory `out`; the files written, relative to it. */
  write(run: ExportRun, out: string): Promise<string[]>;
  /** Cross-layer transcoders, for a format that holds them (the others refuse a CLT in one line). */
  readonly crossLayer?: {
    check(c: ExportCrossLayer): string | undefined;
    write(c: ExportCrossLayer, out: string): Promise<string[]>;
  };
}
