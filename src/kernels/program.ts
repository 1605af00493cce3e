/**
 * Programs: a function body built once with a {@link ProgramBuilder}, lowered to the source
 * of one Python function (plus the autograd classes it applies). A ProgramSpec is plain data:
 * tests can read its source without Python, and the runtime compiles it once.
 */
import { ProgramBuilder, type InputDecl } from './builder.js';
import { Value, type Operand } from './ir.js';
import { IDENTIFIER } from './names.js';
import { Printer } from './printer.js';
import { KernelBuildError } from './types.js';

/** Options that shape how a program is compiled. */
export interface ProgramOptions {
  /**
   * Record autograd (for programs that backpropagate). Default false: no_grad. 'input':
   * the caller decides per run through a boolean input named `grad`.
   */
  grad?: boolean | 'input';
  /** torch.compile the program on CUDA. */
  compile?: boolean;
}

/** A lowered program: Python source plus its declared inputs. */
export interface ProgramSpec<O extends string = string> {
  readonly name: string;
  readonly entry: string;
  readonly source: string;
  readonly inputs: readonly InputDecl[];
  readonly outputs: readonly O[];
  readonly compile: boolean;
}

/** What a program returns under each output name: values, constants, or dicts of them. */
export type ProgramResult = Value | number | boolean | null | { readonly [key: string]: ProgramResult };

/**
 * Build a program: `body` declares inputs on the builder and returns named outputs.
 *
 * @example
 * const axpy = defineProgram('axpy', (g) => {
 *   const a = g.scalarInput('a'); const x = g.input('x'); const y = g.input('y');
 *   return { out: x.mul(a).add(y) };
 * });
 * console.log(axpy.source);
 */
export function defineProgram<O extends string>(
  name: string,
  body: (g: ProgramBuilder) => Record<O, ProgramResult>,
  options: ProgramOptions = {},
): ProgramSpec<O> {
  if (!IDENTIFIER.test(name)) throw new KernelBuildError(`program name '${name}' is not an identifier`);
  const g = new ProgramBuilder();
  let outputs: Record<O, ProgramResult> | undefined;
  const grad = options.grad ?? false;
  const gradFlag = grad === 'input' ? g.scalarInput('grad') : undefined;
  const header = gradFlag
    ? { op: 'set_grad_enabled' as const, args: [gradFlag] }
    : { op: grad ? ('enable_grad' as const) : ('no_grad' as const), args: [] };
  g.block(header, () => {
    outputs = body(g);
    g.emit({ kind: 'effect', expr: { op: 'return_', args: [outputs as Record<string, Operand>] } });
  });
  const params = g.inputs.map((i) => i.name);
  const source = [
    ...[...g.functions.values()].flatMap((fn) => [fn.source, '', '']),
    `def ${name}(${params.join(', ')}):`,
    ...new Printer(params).lines(g.body, 1),
    '',
  ].join('\n');
  return { name, entry: name, source, inputs: g.inputs, outputs: Object.keys(outputs!) as O[], compile: options.compile ?? false };
}
