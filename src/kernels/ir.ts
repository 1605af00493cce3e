/**
 * The intermediate form a program is built in: values, expressions and statements. It holds
 * no Python text: an expression names an op of the vocabulary (vocabulary.ts) and its
 * operands, and the printer (printer.ts) turns statements into source, choosing the names.
 */
import type { OpName } from './vocabulary.js';
import type { KernelDType } from './types.js';

export type ValueKind = 'tensor' | 'scalar' | 'bundle' | 'object';

/** How a value comes to exist in the generated function. */
export type Binding =
  /** A parameter, or a local whose name is fixed (`ctx`, `saved_input`): printed as is. */
  | { kind: 'named'; name: string }
  /** A local assigned by a statement; named by the printer from `hint`. */
  | { kind: 'local' }
  /** An expression printed where it is used (small scalar arithmetic, None). */
  | { kind: 'inline'; expr: Expr };

/** One value of a generated function. */
export class Value {
  constructor(
    readonly kind: ValueKind,
    readonly binding: Binding,
    /** The name the printer starts from (made unique); the op's name unless the math gives one. */
    public hint: string,
  ) {}

  /** Give the value a name in the generated code, as the math calls it (`pre_acts`); only locals take one. */
  named(hint: string): this {
    if (this.binding.kind === 'local') this.hint = hint;
    return this;
  }
}

/** A Python float literal: JS cannot tell 1 from 1.0, Python can. */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** A torch dtype (`torch.bfloat16`). */
export class PyDType {
  constructor(readonly dtype: KernelDType) {}
}

/** A Python tuple literal (`(-2, -1)`, `()`). */
export class PyTuple {
  constructor(readonly items: readonly Operand[]) {}
}

/** Anything that can be an operand: a value, a literal, or lists and dicts of them. */
export type Operand =
  | Value
  | PyFloat
  | PyDType
  | PyTuple
  | number
  | boolean
  | string
  | null
  | readonly Operand[]
  | { readonly [key: string]: Operand };

/** An op of the vocabulary applied to operands. */
export interface Expr {
  readonly op: OpName;
  readonly args: readonly Operand[];
}

export type Stmt =
  /** `a, b = expr` (`a, b, = expr` with trailingComma, as tuple unpacking). */
  | { kind: 'assign'; targets: readonly Value[]; expr: Expr; trailingComma?: boolean }
  /** An expression evaluated for its effect (an in-place method, `x[i] = v`, backward, return). */
  | { kind: 'effect'; expr: Expr }
  /** `header:` and an indented body (`if`, `else`, `with`, `for`). */
  | { kind: 'block'; header: Expr; body: Stmt[] };

/** Where statements go: the function being built. */
export interface Emitter {
  emit(stmt: Stmt): void;
}
