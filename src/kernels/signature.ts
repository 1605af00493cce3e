/**
 * A program's signature: its inputs declared up front, by TypeScript name (camelCase), each
 * with what the body builds with (a symbolic value) and what a caller passes (a tensor, a
 * number, a handle). The same declaration gives the body its values, the Python function
 * its parameters (snake_case: the one case conversion, at the wire) and callers a checked
 * argument type. Inputs the runtime supplies itself (a hook's module inputs and outputs,
 * the token mask, the batch's context) are `provided`: callers never pass them.
 */
import type { PyObject, Tensor } from '../bridge/ops.js';
import type { SymBundle, SymObject, SymScalar, SymTensor } from './values.js';
import type { KernelDType, Shape } from './types.js';

/** What a scalar input may hold: Python numbers, bools, strings and None. */
export type ScalarValue = number | boolean | string | null;

/** The declaration of one input; `V` is what callers pass, `Y` what the body builds with. */
export interface InputSpec<V = unknown, Y = unknown, P extends boolean = boolean, Opt extends boolean = boolean> {
  readonly kind: 'tensor' | 'scalar' | 'bundle' | 'object';
  readonly shape?: Shape;
  readonly dtype?: KernelDType;
  /** A tensor that may be None (callers may leave it out). */
  readonly optional: Opt;
  /** The runtime passes it; callers do not. */
  readonly provided: P;
  /** Type-level only. */
  readonly __types?: { value: V; sym: Y };
}

/** A program's inputs by TypeScript name, in parameter order. */
export type Signature = Record<string, InputSpec>;

type TensorSpec = { shape?: Shape; dtype?: KernelDType };

/** The input declarations a signature is made of. */
export const In = {
  /** A tensor. */
  tensor: (spec: TensorSpec = {}): InputSpec<Tensor, SymTensor, false, false> => ({ kind: 'tensor', ...spec, optional: false, provided: false }),
  /** A tensor that may be None (test it with `g.isNone`). */
  optionalTensor: (spec: TensorSpec = {}): InputSpec<Tensor | null, SymTensor, false, true> => ({ kind: 'tensor', ...spec, optional: true, provided: false }),
  /** A Python number, bool, string or None. */
  scalar: <T extends ScalarValue = number>(): InputSpec<T, SymScalar, false, false> => ({ kind: 'scalar', optional: false, provided: false }),
  /** A dict of tensors (a runtime bundle) with keys `N`. */
  bundle: <N extends string = string>(): InputSpec<PyObject, SymBundle<N>, false, false> => ({ kind: 'bundle', optional: false, provided: false }),
  /** Any other Python object: a handle, or a device or dtype name. */
  object: <T = PyObject | string>(): InputSpec<T, SymObject, false, false> => ({ kind: 'object', optional: false, provided: false }),
};

/** A signature with scalar inputs whose names are known only when it is built (an optimizer's step scalars). */
export type WithScalars<S extends Signature> = S & { [name: string]: InputSpec<number, SymScalar, false, false> | S[keyof S] };

/** `base` and a number input per name in `names`. */
export function withScalars<S extends Signature>(base: S, names: readonly string[]): WithScalars<S> {
  return { ...base, ...Object.fromEntries(names.map((n) => [n, In.scalar()])) } as WithScalars<S>;
}

/** The same input, supplied by the runtime rather than the caller. */
export function provided<V, Y, Opt extends boolean>(spec: InputSpec<V, Y, false, Opt>): InputSpec<V, Y, true, Opt> {
  return { ...spec, provided: true };
}

type SymOf<I> = I extends InputSpec<unknown, infer Y> ? Y : never;
type ValueOf<I> = I extends InputSpec<infer V> ? V : never;

/** What the body receives: a symbolic value per input. */
export type SymsOf<S extends Signature> = { [K in keyof S]: SymOf<S[K]> };

type Required<S extends Signature> = { [K in keyof S as S[K] extends InputSpec<unknown, unknown, true> ? never : S[K] extends InputSpec<unknown, unknown, false, true> ? never : K]: ValueOf<S[K]> };
type Optional<S extends Signature> = { [K in keyof S as S[K] extends InputSpec<unknown, unknown, false, true> ? K : never]?: ValueOf<S[K]> };

/** What a caller passes: every input the runtime does not provide (optional tensors may be left out). */
export type ArgsOf<S extends Signature> = Required<S> & Optional<S>;

/**
 * What the runtime's batch runner (python/sparsify_runtime/hooks.py) passes a hook program:
 * its module's input and output, the token mask (None when every token counts) and the
 * batch's context (what earlier programs kept).
 */
export const HOOK_INPUTS = {
  inputs: provided(In.tensor()),
  outputs: provided(In.tensor()),
  mask: provided(In.optionalTensor({ dtype: 'bool' })),
  context: provided(In.bundle<string>()),
};

/** What it passes a program on a pass's logits: the logits, the token ids, the mask, the context. */
export const LOGITS_INPUTS = {
  logits: provided(In.tensor()),
  inputIds: provided(In.tensor({ dtype: 'int64' })),
  mask: provided(In.optionalTensor({ dtype: 'bool' })),
  context: provided(In.bundle<string>()),
};
