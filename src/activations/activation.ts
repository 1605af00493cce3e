/**
 * What an activation is to the rest of the code: the contract each file of this folder
 * fills. An activation turns a coder's pre-activations into the latents it keeps for each
 * token; the encoder, decoder, losses, evaluation and the explorer build on the one shape
 * it returns, a {@link LatentSelection}.
 */
import type { AutogradFunction, ProgramBuilder, SymScalar, SymTensor } from '../kernels/index.js';
import type { SparseBackward } from '../math/sparse-grads.js';

/**
 * The latents an activation kept for each of N tokens, in one of two layouts.
 * - Rows (no `ragged`): row n's active latents are `indices[n, j]` with activations
 *   `values[n, j]`, [N, K] each. A slot whose value is 0 is inactive: activations that keep
 *   the same number per token (topk and groupmax: k) fill every slot, those whose count varies
 *   per token pad their rows to a common width with zeros (at any index).
 * - Ragged (`ragged` given): `values` and `indices` are flat [T], grouped by token: entry t
 *   belongs to token `ragged.rows[t]`, and token n's entries start at `ragged.offsets[n]` [N].
 *   No padding: T is the number kept, so a batch whose counts vary widely (batchtopk: one
 *   token may keep ten times k) costs what it keeps, not N times its widest token.
 * Everything that reads a selection sums over its entries (the decoder's embedding bag,
 * firing counts of values above zero, the explorer's scatter-add), so padding adds nothing.
 */
export interface LatentSelection<T = SymTensor> {
  values: T;
  indices: T;
  ragged?: RaggedRows<T>;
}

/** Where a ragged selection's flat entries belong: each entry's token, and each token's first entry. */
export interface RaggedRows<T = SymTensor> {
  rows: T;
  offsets: T;
}

/** A parameter an activation adds to the coder (saved in `sae.safetensors` under `name`). */
export interface ActivationParam<N extends string = string> {
  readonly name: N;
  /** Its shape for a coder of `numLatents` latents on inputs of width `dIn`. */
  shape(numLatents: number, dIn: number): number[];
  /** A new coder's value. */
  init(g: ProgramBuilder, like: { encoderBias: SymTensor }): SymTensor;
}

/** An activation's own parameters in a program, by name. */
export type ActivationTensors<P extends string = string> = Readonly<Record<P, SymTensor>>;

/**
 * An activation's own training encoder, for one whose selection trains parameters of its own:
 * the fused encoder's contract (inputs `input`, `weight`, `bias` and its parameters; outputs the
 * selection's `values` and `indices`, a ragged one's `rows` and `offsets`, and the relu'd
 * `preacts`) with its own backward.
 */
export type ActivationEncoder<P extends string = string> = AutogradFunction<'input' | 'weight' | 'bias' | P, 'k' | 'bandwidth', 'values' | 'indices' | 'preacts' | 'rows' | 'offsets'>;

/** One activation: its name, checks, selection, gradient rule, parameters and inference. */
export interface Activation<N extends string = string, P extends string = string> {
  /** As in `cfg.json` and on the command line (`--activation NAME`). */
  readonly name: N;
  /** What it keeps, in a few words (for --help). */
  readonly summary: string;
  /** The stem of its encoders' Python class names (`FusedEncoder<stem>`). */
  readonly className: string;
  /**
   * Why a coder of `numLatents` latents cannot use it with this `k`, or undefined when it
   * can; `latents` names the latent count in the message ("the number of latents (64)").
   */
  check(k: number, numLatents: number, latents: string): string | undefined;
  /** Training's selection from the pre-activations (after the relu) [N, M]; `own`: its parameters. */
  select(f: ProgramBuilder, preacts: SymTensor, k: SymScalar | number, own: ActivationTensors<P>): LatentSelection;
  /**
   * How the gradient of the kept values reaches the encoder (only ever through the kept
   * entries' pre-activations). 'kept-entries': as is, without the relu's mask (the
   * reference's fused encoder: a kept entry clipped to 0 still passes gradient).
   * 'positive-entries': only where the kept value is above zero, as autograd of the relu
   * gives it; what a selection whose rows are padded with zero slots needs.
   */
  readonly backward: 'kept-entries' | 'positive-entries';
  /**
   * Its rows are padded: only slots whose value is above zero are selected (counted as
   * fired, passed gradient). Unpadded selections count every slot, as the reference's topk
   * marks every selected latent as fired even when its activation is 0.
   */
  readonly padded: boolean;
  /**
   * Training's selection (`select`, or its own encoder's) is ragged (see
   * {@link LatentSelection}); inference's (`infer`, else `select` for an activation with its
   * own encoder) is in rows, which is what `SparseCoder.encode` and the explorer hand on.
   */
  readonly ragged?: boolean;
  /**
   * How its coders encode at inference, as other libraries' formats name it (src/export): the
   * k largest per token ('topk'), each latent above its own threshold, its parameter
   * `threshold` ('per-latent-threshold'), or a selection of its own that they lack ('own'). A
   * learned inference threshold, where a coder has one, overrides it.
   */
  readonly inference: 'topk' | 'per-latent-threshold' | 'own';
  /** Parameters of its own, beyond the coder's encoder and decoder. */
  readonly params: readonly ActivationParam<P>[];
  /**
   * The selection `SparseCoder.encode`, evaluation and the explorer use; training's
   * `select` when not given.
   */
  infer?(f: ProgramBuilder, preacts: SymTensor, k: SymScalar | number, own: ActivationTensors<P>): LatentSelection;
  /**
   * Whether it selects by k. Without (jumprelu: thresholds decide), a k other than the
   * default, Multi-TopK (4k latents) and k decay are errors.
   */
  readonly usesK: boolean;
  /**
   * Its own training encoder (built once per weight-gradient kernel), where the shared fused
   * encoder (relu, `select`, the `backward` rule) cannot train it; `select` is then inference's.
   */
  encoder?(backward: SparseBackward): ActivationEncoder<P>;
  /**
   * The L0 its coders are trained towards (`--l0_coefficient`, `--target_l0`): a
   * differentiable estimate of the mean number of active latents per token of `tokens`
   * tokens, from training's selection and its parameters.
   */
  l0?(f: ProgramBuilder, kept: LatentSelection, own: ActivationTensors<P>, tokens: SymScalar, bandwidth: number): SymTensor;
  /**
   * It can learn an inference threshold (`--inference_threshold`): while training, theta
   * follows an exponential average of this statistic of each batch's selection; a coder that
   * has learned one then encodes `pre * (pre > theta)` at inference.
   */
  readonly learnedThreshold?: LearnedThreshold;
}

/** How an activation's selections feed a learned inference threshold. */
export interface LearnedThreshold {
  /** Whether coders learn one unless told (`--inference_threshold` off/on). */
  readonly byDefault: boolean;
  /** The batch's value (a float32 scalar) that theta is averaged towards. */
  sample(f: ProgramBuilder, kept: LatentSelection): SymTensor;
}
