/**
 * Programs: a signature (the inputs, declared once) and a body built once with a
 * {@link ProgramBuilder}, lowered to the source of one Python function (plus the autograd
 * classes it applies). A ProgramSpec is plain data: tests can read its source without
 * Python, and the runtime compiles it once. TypeScript names (camelCase) become Python names
 * (snake_case) here, for the inputs and the outputs, and nowhere else.
 */
import { snakeCase } from '../util/case.js';
import { ProgramBuilder, type InputDecl } from './builder.js';
import { Value, type Operand } from './ir.js';
import { IDENTIFIER } from './names.js';
import { Printer } from './printer.js';
import { In, type InputSpec, type Signature, type SymsOf } from './signature.js';
import { KernelBuildError } from './types.js';
import type { SymScalar } from './values.js';

/** Options that shape how a program is compiled. */
export interface ProgramOptions {
  /**
   * Record autograd (for programs that backpropagate). Default false: no_grad. 'input':
   * the caller decides per run through a boolean input `grad` (the first parameter).
   */
  grad?: boolean | 'input';
  /** torch.compile the program on CUDA. */
  compile?: boolean;
}

/**
 * A lowered program: Python source, its inputs (TypeScript and wire names) and its outputs.
 * `S` is its signature, which types the arguments of `runProgram` and `bind`; `R` what its
 * body returns, which types `runProgram`'s result.
 */
export interface ProgramSpec<O extends string = string, S extends Signature = Signature, R = Record<O, ProgramResult>> {
  readonly name: string;
  readonly entry: string;
  readonly source: string;
  /** Every input in parameter order: `key` its TypeScript name, `name` its Python one. */
  readonly inputs: readonly InputDecl[];
  /** Output names (TypeScript). */
  readonly outputs: readonly O[];
  /** Each output's Python name, by TypeScript name. */
  readonly wireOutputs: Readonly<Record<O, string>>;
  readonly compile: boolean;
  /** Type-level only: the signature and the body's outputs. */
  readonly __types?: { signature: S; outputs: R };
}

/** What a program returns under each output name: values, constants, or dicts of them. */
export type ProgramResult = Value | number | boolean | null | { readonly [key: string]: ProgramResult };

type Body<S extends Signature, R> = (g: ProgramBuilder, inputs: SymsOf<S>) => R;
type Outputs = Record<string, ProgramResult>;

/** The signature with the `grad` flag first (options `grad: 'input'`). */
export type WithGrad<S extends Signature> = { grad: InputSpec<boolean, SymScalar, false, false> } & S;

/**
 * Build a program from its signature and body: the body gets one symbolic value per input
 * and returns named outputs.
 *
 * @example
 * const axpy = defineProgram('axpy', { a: In.scalar(), x: In.tensor(), y: In.tensor() }, (g, { a, x, y }) => ({ out: x.mul(a).add(y) }));
 * console.log(axpy.source);
 */
export function defineProgram<S extends Signature, R extends Outputs>(name: string, signature: S, body: Body<S, R>, options: ProgramOptions & { grad: 'input' }): ProgramSpec<keyof R & string, WithGrad<S>, R>;
export function defineProgram<S extends Signature, R extends Outputs>(name: string, signature: S, body: Body<S, R>, options?: ProgramOptions & { grad?: boolean }): ProgramSpec<keyof R & string, S, R>;
export function defineProgram<S extends Signature, R extends Outputs>(name: string, signature: S, body: Body<S, R>, options: ProgramOptions = {}): ProgramSpec<string, Signature, R> {
  if (!IDENTIFIER.test(name)) throw new KernelBuildError(`program name '${name}' is not an identifier`);
  const g = new ProgramBuilder();
  const grad = options.grad ?? false;
  const full: Signature = grad === 'input' ? { grad: In.scalar<boolean>(), ...signature } : signature;
  const syms: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(full)) syms[key] = g.declareInput(key, snakeCase(key), spec);
  const gradFlag = grad === 'input' ? (syms.grad as SymScalar) : undefined;
  const header = gradFlag
    ? { op: 'set_grad_enabled' as const, args: [gradFlag] }
    : { op: grad ? ('enable_grad' as const) : ('no_grad' as const), args: [] };
  let outputs: R | undefined;
  g.block(header, () => {
    outputs = body(g, syms as SymsOf<S>);
    const wire = Object.fromEntries(Object.entries(outputs).map(([k, v]) => [snakeCase(k), v]));
    g.emit({ kind: 'effect', expr: { op: 'return_', args: [wire as Record<string, Operand>] } });
  });
  const keys = Object.keys(outputs!);
  const wireOutputs = Object.fromEntries(keys.map((k) => [k, snakeCase(k)]));
  if (new Set(Object.values(wireOutputs)).size !== keys.length) throw new KernelBuildError(`program ${name}: two outputs have the same Python name`);
  const params = g.inputs.map((i) => i.name);
  const source = [
    ...[...g.kernels.values()].flatMap((k) => [k.source, '', '']),
    ...[...g.functions.values()].flatMap((fn) => [fn.source, '', '']),
    `def ${name}(${params.join(', ')}):`,
    ...new Printer(params).lines(g.body, 1),
    '',
  ].join('\n');
  return { name, entry: name, source, inputs: g.inputs, outputs: keys, wireOutputs, compile: options.compile ?? false };
}
