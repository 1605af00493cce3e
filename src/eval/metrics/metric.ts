/**
 * What an evaluation metric is: the contract each file of this folder fills. A coder metric
 * names the device sums it needs (accumulated per batch in the clean pass, read once at the
 * end) and computes its value from them; a splice metric computes its value from the
 * spliced and ablated passes' cross-entropies and KL divergences. Each says how it is
 * reported: its zod schema in `eval.json`, its column in the terminal table and the
 * explorer's overview, and whether training logs it (`eval/<metric>/<coder>`).
 */
import type { z } from 'zod';
import type { ProgramBuilder, SymTensor } from '../../kernels/index.js';

/** What the clean pass's hook has of a batch, for the sums (kept tokens only). */
export interface BatchView {
  /** The target [N, D] (the module's output), in the coder's dtype, and in float64. */
  y: SymTensor;
  y64: SymTensor;
  /** y - reconstruction. */
  e: SymTensor;
  /** sum |y - mean y|^2 over the batch. */
  totalVariance: SymTensor;
  /** The selection's values and latent indices [N, K] (inactive slots 0). */
  acts: SymTensor;
  indices: SymTensor;
  /** acts > 0. */
  fired: SymTensor;
}

/**
 * A sum over the evaluated batches, kept on the device: `scalar` (float64), `latents`
 * (int64 per latent, read as an array) or `width` (float64 per input dimension, read reduced
 * to a scalar by `read`). Metrics that share one share its accumulation.
 */
export interface DeviceSum {
  readonly name: string;
  readonly shape: 'scalar' | 'latents' | 'width';
  /** Add one batch. */
  add(g: ProgramBuilder, sum: SymTensor, batch: BatchView): void;
  /** A `width` sum's scalar, as read (e.g. its squared norm). */
  read?(sum: SymTensor): SymTensor;
}

/** The sums as read at the end: scalars (and reduced `width` sums) by name, `latents` sums as arrays. */
export interface ReadSums {
  scalars: Readonly<Record<string, number>>;
  latents: Readonly<Record<string, readonly number[]>>;
  /** Batches evaluated. */
  batches: number;
  /** Tokens evaluated. */
  tokens: number;
}

/** How a metric shows in a table: its column head and how a value is written. */
export interface Column<V> {
  readonly head: string;
  format(value: V): string;
}

interface Reported<N extends string, V> {
  /** Its key in `eval.json`. */
  readonly name: N;
  readonly schema: z.ZodType<V>;
  /** Its column in `sparsify eval`'s table. */
  readonly table?: Column<V>;
  /** Its column in the explorer's overview. */
  readonly overview?: Column<V>;
  /** Logged during training (--eval_every) as `eval/<name>/<coder>`. */
  readonly log: boolean;
}

/** A metric of one coder's reconstruction and sparsity. */
export interface CoderMetric<N extends string = string, V = unknown> extends Reported<N, V> {
  readonly kind: 'coder';
  readonly sums: readonly DeviceSum[];
  value(read: ReadSums): V;
}

/** The cross-entropies and KL divergences (per scored position) a splice metric is made from. */
export interface SpliceBase {
  ceClean: number;
  ceSpliced: number;
  ceZero: number;
  klSpliced: number;
  klZero: number;
}

/** A metric of the model with a coder spliced in (or with every hookpoint's at once). */
export interface SpliceMetric<N extends string = string> extends Reported<N, number> {
  readonly kind: 'splice';
  value(base: SpliceBase): number;
}

/** `digits` decimals, "-" when not finite. */
export const fixed = (digits: number) => (v: number): string => (Number.isFinite(v) ? v.toFixed(digits) : '-');
/** A share as a percentage with one decimal. */
export const percent = (v: number): string => `${(v * 100).toFixed(1)}%`;
