/**
 * Triton kernels written in TypeScript: a kernel's typed parameter list (pointers, runtime
 * scalars, compile-time constants) and its body, built by a TS function from the parameters'
 * names, lowered to a `@triton.jit` function that a program (or an autograd function's
 * backward) launches with `ProgramBuilder.launchTriton`. The program's source carries the
 * kernel's, so the runtime compiles both at once; no .py kernel files. Under
 * `TRITON_INTERPRET=1` Triton runs them on CPU tensors, which is how they are tested.
 */
import { IDENTIFIER } from './names.js';
import { KernelBuildError } from './types.js';

/** A kernel parameter: a tensor's pointer, a runtime integer or float, or a `tl.constexpr` (a block size: one compiled kernel per value). */
export interface TritonParam<N extends string = string> {
  readonly name: N;
  readonly kind: 'pointer' | 'int' | 'float' | 'constexpr';
}

/** A Triton kernel: its name, parameters in launch order, and its Python source. */
export interface TritonKernel<N extends string = string> {
  readonly name: string;
  readonly params: readonly TritonParam<N>[];
  readonly source: string;
}

/**
 * Define a Triton kernel. `body` gets each parameter's name (typed: a misspelt parameter is a
 * compile error) and returns the body's lines, indented from the function's.
 *
 * @example
 * const scale = defineTritonKernel({ name: 'scale_kernel', params: [{ name: 'x', kind: 'pointer' }, { name: 'n', kind: 'int' }, { name: 'BLOCK', kind: 'constexpr' }] as const,
 *   body: (p) => [`offs = tl.program_id(0) * ${p.BLOCK} + tl.arange(0, ${p.BLOCK})`, `tl.store(${p.x} + offs, tl.load(${p.x} + offs, mask=offs < ${p.n}) * 2, mask=offs < ${p.n})`] });
 */
export function defineTritonKernel<const P extends readonly TritonParam[]>(spec: { name: string; params: P; body: (p: { readonly [K in P[number]['name']]: string }) => readonly string[] }): TritonKernel<P[number]['name']> {
  if (!IDENTIFIER.test(spec.name)) throw new KernelBuildError(`Triton kernel name '${spec.name}' is not an identifier`);
  for (const p of spec.params) if (!IDENTIFIER.test(p.name)) throw new KernelBuildError(`${spec.name}: parameter '${p.name}' is not an identifier`);
  const names = Object.fromEntries(spec.params.map((p) => [p.name, p.name])) as { [K in P[number]['name']]: string };
  const signature = spec.params.map((p) => (p.kind === 'constexpr' ? `${p.name}: tl.constexpr` : p.name)).join(', ');
  const source = ['@triton.jit', `def ${spec.name}(${signature}):`, ...spec.body(names).map((line) => `    ${line}`)].join('\n');
  return { name: spec.name, params: spec.params as unknown as readonly TritonParam<P[number]['name']>[], source };
}
