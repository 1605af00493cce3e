/**
 * Custom autograd functions written in TypeScript: a forward and a hand-written backward,
 * lowered to a `torch.autograd.Function` class. Each input's gradient is computed under
 * `if ctx.needs_input_grad[i]:`, so unneeded gradients cost nothing.
 */
import { ProgramBuilder, type AutogradFunction } from './builder.js';
import { IDENTIFIER } from './names.js';
import { Printer } from './printer.js';
import { KernelBuildError, type KernelDType, type Shape } from './types.js';
import { SymScalar, SymTensor, type ScalarLike } from './values.js';

/** The pieces of a `torch.autograd.Function` written in TS. */
export interface AutogradFunctionSpec<TI extends string, TS extends string, TO extends string> {
  /** Python class name. */
  name: string;
  tensorInputs: readonly TI[];
  scalarInputs: readonly TS[];
  outputs: readonly TO[];
  /** Outputs that carry no gradient (indices). */
  nonDifferentiable?: readonly TO[];
  /**
   * false: outputs that receive no gradient pass None to the backward instead of a tensor of
   * zeros (`ctx.set_materialize_grads(False)`), which saves filling one when an output is big
   * and unused. The backward rules read only the first differentiable output's gradient; when
   * even that one is None, every input gets None.
   */
  materializeGrads?: boolean;
  forward(f: ProgramBuilder, inputs: Record<TI, SymTensor>, scalars: Record<TS, SymScalar>): { outputs: Record<TO, SymTensor>; save: Record<string, SymTensor> };
  /** Per input, how to compute its gradient from the saved tensors and the output gradients. */
  backward: {
    [K in TI]?: (b: ProgramBuilder, saved: Record<string, SymTensor>, grads: Record<TO, SymTensor>, scalars: Record<TS, SymScalar>) => SymTensor;
  };
  /** Optional static shapes of the outputs, for shape checks downstream. */
  inferShapes?(tensors: Record<TI, SymTensor>, scalars: Record<TS, ScalarLike>): Partial<Record<TO, { shape?: Shape; dtype?: KernelDType }>>;
}

const named = (b: ProgramBuilder, name: string, dtype?: KernelDType): SymTensor => new SymTensor(b, { kind: 'named', name }, name, undefined, dtype);

/** Define a custom autograd function (forward and hand-written backward) in TypeScript. */
export function defineAutogradFunction<TI extends string, TS extends string, TO extends string>(
  spec: AutogradFunctionSpec<TI, TS, TO>,
): AutogradFunction<TI, TS, TO> & AutogradFunctionSpec<TI, TS, TO> {
  if (!IDENTIFIER.test(spec.name)) throw new KernelBuildError(`autograd function name '${spec.name}' is not an identifier`);

  // forward(ctx, *tensors, *scalars)
  const f = new ProgramBuilder();
  const inputs = Object.fromEntries(spec.tensorInputs.map((k) => [k, f.input(k)])) as Record<TI, SymTensor>;
  const scalars = Object.fromEntries(spec.scalarInputs.map((k) => [k, f.scalarInput(k)])) as Record<TS, SymScalar>;
  const { outputs, save } = spec.forward(f, inputs, scalars);
  const savedNames = Object.keys(save);
  if (savedNames.length) f.emit({ kind: 'effect', expr: { op: 'save_for_backward', args: savedNames.map((k) => save[k]!) } });
  for (const s of spec.scalarInputs) f.emit({ kind: 'effect', expr: { op: 'ctx_set', args: [s, scalars[s]] } });
  const nonDiff = (spec.nonDifferentiable ?? []).map((k) => outputs[k]);
  if (nonDiff.length) f.emit({ kind: 'effect', expr: { op: 'mark_non_differentiable', args: nonDiff } });
  if (spec.materializeGrads === false) f.emit({ kind: 'effect', expr: { op: 'no_materialize_grads', args: [] } });
  f.emit({ kind: 'effect', expr: { op: 'return_', args: spec.outputs.map((k) => outputs[k]) } });

  // backward(ctx, *output grads)
  const b = new ProgramBuilder();
  const gradNames = spec.outputs.map((k) => `grad_${k}`);
  const saved = Object.fromEntries(savedNames.map((k) => [k, named(b, `saved_${k}`, save[k]!.dtype)]));
  if (savedNames.length) b.emit({ kind: 'assign', targets: Object.values(saved), expr: { op: 'saved_tensors', args: [] }, trailingComma: true });
  const grads = Object.fromEntries(spec.outputs.map((k, i) => [k, named(b, gradNames[i]!)])) as Record<TO, SymTensor>;
  if (spec.materializeGrads === false) {
    const first = spec.outputs.find((k) => !(spec.nonDifferentiable ?? []).includes(k));
    if (first === undefined) throw new KernelBuildError(`${spec.name}: materializeGrads false needs a differentiable output`);
    b.block({ op: 'if_is_none', args: [grads[first]] }, () => {
      b.emit({ kind: 'effect', expr: { op: 'return_', args: [...spec.tensorInputs, ...spec.scalarInputs].map(() => null) } });
    });
  }
  const bScalars = Object.fromEntries(
    spec.scalarInputs.map((k) => [k, new SymScalar(b, { kind: 'inline', expr: { op: 'ctx_get', args: [k] } }, k)]),
  ) as Record<TS, SymScalar>;
  const results = spec.tensorInputs.map((k, i) => {
    const result = named(b, `d_${k}`);
    b.emit({ kind: 'assign', targets: [result], expr: { op: 'literal', args: [null] } });
    const rule = spec.backward[k];
    if (rule) {
      b.block({ op: 'if_needs_input_grad', args: [i] }, () => {
        const grad = rule(b, saved, grads, bScalars);
        b.emit({ kind: 'assign', targets: [result], expr: { op: 'alias', args: [grad] } });
      });
    }
    return result;
  });
  b.emit({ kind: 'effect', expr: { op: 'return_', args: [...results, ...spec.scalarInputs.map(() => null)] } });

  if (f.functions.size || b.functions.size) throw new KernelBuildError(`${spec.name}: autograd functions cannot nest other autograd functions`);
  const forwardParams = ['ctx', ...spec.tensorInputs, ...spec.scalarInputs];
  const backwardParams = ['ctx', ...gradNames];
  const backwardFixed = [...backwardParams, ...savedNames.map((k) => `saved_${k}`), ...spec.tensorInputs.map((k) => `d_${k}`)];
  const source = [
    `class ${spec.name}(torch.autograd.Function):`,
    '    @staticmethod',
    `    def forward(${forwardParams.join(', ')}):`,
    ...new Printer(forwardParams).lines(f.body, 2),
    '',
    '    @staticmethod',
    `    def backward(${backwardParams.join(', ')}):`,
    ...new Printer(backwardFixed).lines(b.body, 2),
  ].join('\n');
  return { ...spec, source, kernels: [...f.kernels.values(), ...b.kernels.values()] };
}
