/**
 * The builder a program's body is written with: it declares the inputs, records statements
 * in blocks (if/else, loops, no_grad, autocast), and offers the constructors, functions and
 * collectives that are not methods of a value. It records; printing is printer.ts's job.
 */
import { PyDType, PyFloat, PyTuple, type Expr, type Emitter, type Operand, type Stmt } from './ir.js';
import { IDENTIFIER } from './names.js';
import { KernelBuildError, type KernelDType, type Shape } from './types.js';
import { broadcastShapes, linearShape } from './shapes.js';
import type { TritonKernel } from './triton.js';
import type { InputSpec } from './signature.js';
import {
  SymBundle,
  SymObject,
  SymScalar,
  SymTensor,
  bindTensor,
  effect,
  inlineScalar,
  type ScalarLike,
  type TensorOrScalar,
} from './values.js';

/**
 * An input declared by a program: `name` is its Python parameter, `key` its TypeScript name
 * (the same for autograd functions' own inputs); `provided` ones the runtime passes.
 */
export type InputDecl = ({ kind: 'tensor'; shape?: Shape; dtype?: KernelDType; optional?: boolean } | { kind: 'scalar' } | { kind: 'bundle' } | { kind: 'object' }) & {
  name: string;
  key: string;
  provided?: boolean;
};

/** A custom autograd function as a program applies it (see autograd.ts for defining one). */
export interface AutogradFunction<TI extends string = string, TS extends string = string, TO extends string = string> {
  /** Python class name. */
  readonly name: string;
  readonly tensorInputs: readonly TI[];
  readonly scalarInputs: readonly TS[];
  readonly outputs: readonly TO[];
  /** The Python class definition. */
  readonly source: string;
  /** The Triton kernels its forward or backward launches. */
  readonly kernels?: readonly TritonKernel[];
  /** Static shapes of the outputs, for shape checks downstream. */
  inferShapes?(tensors: Record<TI, SymTensor>, scalars: Record<TS, ScalarLike>): Partial<Record<TO, { shape?: Shape; dtype?: KernelDType }>>;
}

/** A value a branch of {@link ProgramBuilder.ifElse} produces. */
export type BranchValue = SymTensor | SymScalar;

function snakeHint(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** Records the statements of one Python function. */
export class FunctionBuilder implements Emitter {
  /** The statements recorded at the top level. */
  readonly body: Stmt[] = [];
  private readonly stack: Stmt[][] = [this.body];
  /** Autograd functions used, to be defined before the entry function. */
  readonly functions = new Map<string, AutogradFunction>();
  /** The Triton kernels this program (or its autograd functions) launches, by name. */
  readonly kernels = new Map<string, TritonKernel>();

  emit(stmt: Stmt): void {
    this.stack[this.stack.length - 1]!.push(stmt);
  }

  /** A block (`if ...:`, `with ...:`) around the statements `body` records. */
  block(header: Expr, body: () => void): void {
    const stmts: Stmt[] = [];
    this.emit({ kind: 'block', header, body: stmts });
    this.stack.push(stmts);
    try {
      body();
    } finally {
      this.stack.pop();
    }
  }
}

/** The builder handed to a program's body. */
export class ProgramBuilder extends FunctionBuilder {
  readonly inputs: InputDecl[] = [];

  private declare(decl: InputDecl): { kind: 'named'; name: string } {
    if (this.inputs.some((i) => i.key === decl.key)) throw new KernelBuildError(`input '${decl.key}' declared twice`);
    if (!IDENTIFIER.test(decl.name)) throw new KernelBuildError(`input name '${decl.name}' is not a valid identifier`);
    if (this.inputs.some((i) => i.name === decl.name)) throw new KernelBuildError(`input '${decl.name}' declared twice`);
    this.inputs.push(decl);
    return { kind: 'named', name: decl.name };
  }

  // ---- inputs (programs declare theirs in a signature: program.ts)
  /** @internal One input of a signature: TypeScript name `key`, Python parameter `name`. */
  declareInput(key: string, name: string, spec: InputSpec): SymTensor | SymScalar | SymBundle | SymObject {
    const base = { key, name, ...(spec.provided ? { provided: true } : {}) };
    switch (spec.kind) {
      case 'tensor': {
        const shape = { ...(spec.shape ? { shape: spec.shape } : {}), ...(spec.dtype ? { dtype: spec.dtype } : {}) };
        return new SymTensor(this, this.declare({ ...base, kind: 'tensor', ...shape, ...(spec.optional ? { optional: true } : {}) }), name, spec.shape, spec.dtype);
      }
      case 'scalar':
        return new SymScalar(this, this.declare({ ...base, kind: 'scalar' }), name);
      case 'bundle':
        return new SymBundle(this, this.declare({ ...base, kind: 'bundle' }), name);
      case 'object':
        return new SymObject(this, this.declare({ ...base, kind: 'object' }), name);
    }
  }
  /** @internal A tensor parameter of an autograd function's forward. */
  input(name: string): SymTensor {
    return new SymTensor(this, this.declare({ key: name, name, kind: 'tensor' }), name);
  }
  /** @internal A scalar parameter of an autograd function's forward. */
  scalarInput(name: string): SymScalar {
    return new SymScalar(this, this.declare({ key: name, name, kind: 'scalar' }), name);
  }

  // ---- control flow
  isNone(v: SymTensor | SymScalar | SymObject): SymScalar {
    return inlineScalar(this, 'is_none', [v]);
  }

  /** `if cond:` then/else, each branch producing the same named outputs. */
  ifElse<R extends Record<string, BranchValue>>(cond: SymScalar, then: () => R, otherwise: () => R): R {
    const outputs: Record<string, BranchValue> = {};
    this.block({ op: 'if', args: [cond] }, () => {
      for (const [key, v] of Object.entries(then())) {
        const out = v instanceof SymTensor ? new SymTensor(this, { kind: 'local' }, snakeHint(key), v.shape, v.dtype) : new SymScalar(this, { kind: 'local' }, snakeHint(key));
        outputs[key] = out;
        this.emit({ kind: 'assign', targets: [out], expr: { op: 'alias', args: [v] } });
      }
    });
    this.block({ op: 'else', args: [] }, () => {
      const values = otherwise();
      for (const key of Object.keys(outputs)) {
        const v = values[key];
        if (!v) throw new KernelBuildError(`ifElse: the else branch lacks output '${key}'`);
        this.emit({ kind: 'assign', targets: [outputs[key]!], expr: { op: 'alias', args: [v] } });
      }
    });
    return outputs as R;
  }

  /** Statements run only when `cond` holds (and others when it does not). */
  when(cond: SymScalar, body: () => void, otherwise?: () => void): void {
    this.block({ op: 'if', args: [cond] }, body);
    if (otherwise) this.block({ op: 'else', args: [] }, otherwise);
  }

  /** `for i in range(n):` around `body`. */
  forRange(n: ScalarLike, body: (i: SymScalar) => void): void {
    const i = new SymScalar(this, { kind: 'local' }, 'i');
    this.block({ op: 'for_range', args: [i, n] }, () => body(i));
  }

  /** Statements run without autograd recording. */
  noGrad(body: () => void): void {
    this.block({ op: 'no_grad', args: [] }, body);
  }

  /** Statements run under bf16 autocast on CUDA when `enabled` holds. */
  autocast(enabled: ScalarLike, body: () => void): void {
    this.block({ op: 'autocast_bf16', args: [enabled] }, body);
  }

  // ---- collectives (no-ops unless torch.distributed is running with several ranks)
  /** In place over all ranks: 'mean', 'sum' or 'max' (for bool tensors, a logical or). */
  allReduce_(t: SymTensor, how: 'mean' | 'sum' | 'max'): void {
    effect(this, 'all_reduce_', [t, how]);
  }
  /** Average the gradients of `params` across ranks in one flattened collective. */
  allReduceGrads_(params: SymTensor[]): void {
    effect(this, 'all_reduce_grads_', [params]);
  }
  /** Send `t` from rank `src` to every rank, in place. */
  broadcast_(t: SymTensor, src: ScalarLike): void {
    effect(this, 'broadcast_', [t, src]);
  }
  /**
   * The tensor rank `src` holds (`t`, none elsewhere) on every rank, of `like`'s dtype and
   * device and `ndim` dimensions: shaped as `shape` when every rank knows it (no host sync),
   * else as `src` says. Not distributed: `t`.
   */
  broadcastFrom(t: SymTensor, src: ScalarLike, like: SymTensor, ndim: number, shape?: readonly ScalarLike[]): SymTensor {
    return bindTensor(this, 'broadcast_from', [t, src, like, ndim, ...(shape ?? [])], undefined, like.dtype);
  }
  /** Sum `t` over all ranks into rank `dst`'s `t`, in place (the others' are left undefined). */
  reduce_(t: SymTensor, dst: ScalarLike): void {
    effect(this, 'reduce_', [t, dst]);
  }
  /** This process's rank (0 when not distributed). */
  rank(): SymScalar {
    return inlineScalar(this, 'dist_rank', []);
  }
  worldSize(): SymScalar {
    return inlineScalar(this, 'dist_world_size', []);
  }

  // ---- constants and constructors
  /** A Python float literal (JS cannot tell 1 from 1.0; Python can). */
  float(value: number): SymScalar {
    return inlineScalar(this, 'literal', [new PyFloat(value)]);
  }
  /** None where a tensor may stand (a branch with no tensor). */
  none(): SymTensor {
    return new SymTensor(this, { kind: 'inline', expr: { op: 'literal', args: [null] } }, 'none');
  }
  zerosLike(t: SymTensor): SymTensor {
    return bindTensor(this, 'zeros_like', [t], t.shape, t.dtype);
  }
  fullLike(t: SymTensor, value: ScalarLike): SymTensor {
    return bindTensor(this, 'full_like', [t, value], t.shape, t.dtype);
  }
  /** An uninitialised tensor shaped as `t`, of `dtype`. */
  emptyLike(t: SymTensor, dtype: KernelDType): SymTensor {
    return bindTensor(this, 'empty_like', [t, new PyDType(dtype)], t.shape, dtype);
  }
  /**
   * Zeros of `sizes`; the dtype is a dtype or an object input holding a dtype's name, the
   * device that of `device` when it is a tensor, else the device object itself.
   */
  zeros(sizes: readonly (number | SymScalar)[], options: { dtype: KernelDType | SymObject; device: SymTensor | SymObject }): SymTensor {
    const dtype = typeof options.dtype === 'string' ? new PyDType(options.dtype) : this.torchDtype(options.dtype);
    const device = options.device instanceof SymTensor ? this.deviceOf(options.device) : options.device;
    const known = sizes.every((s) => typeof s === 'number');
    return bindTensor(this, 'zeros', [dtype, device, ...sizes], known ? (sizes as number[]) : undefined, typeof options.dtype === 'string' ? options.dtype : undefined);
  }
  /** `torch.cat` of tensors along `dim`. */
  cat(tensors: readonly SymTensor[], dim = 0): SymTensor {
    return bindTensor(this, 'cat', [tensors, dim], undefined, tensors[0]?.dtype);
  }
  /** A tensor of `sizes` filled with `value`, of `dtype`, on `like`'s device. */
  full(sizes: readonly (number | SymScalar)[], value: ScalarLike, dtype: KernelDType, like: SymTensor): SymTensor {
    const known = sizes.every((s) => typeof s === 'number');
    return bindTensor(this, 'full', [new PyTuple(sizes), value, new PyDType(dtype), this.deviceOf(like)], known ? (sizes as number[]) : undefined, dtype);
  }
  /** A 0-d tensor of `value` on `like`'s device and dtype. */
  scalarTensor(like: SymTensor, value: number): SymTensor {
    return bindTensor(this, 'new_tensor', [like, new PyFloat(value)], [], like.dtype);
  }
  /** `torch.arange(start, end, step)` on `like`'s device. */
  arange(start: ScalarLike, end: ScalarLike, step: ScalarLike, like: SymTensor): SymTensor {
    return bindTensor(this, 'arange', [start, end, step, like], undefined, 'int64');
  }
  /** A torch dtype from an object input holding its name (`"float32"`). */
  torchDtype(name: SymObject): SymObject {
    return new SymObject(this, { kind: 'inline', expr: { op: 'torch_dtype', args: [name] } }, 'dtype');
  }
  /** The device a tensor lives on. */
  deviceOf(t: SymTensor): SymObject {
    return new SymObject(this, { kind: 'inline', expr: { op: 'device_of', args: [t] } }, 'device');
  }
  /** A bundle of tensors under these names. */
  bundle<K extends string>(entries: Record<K, SymTensor>): SymBundle<K> {
    const b = new SymBundle<K>(this, { kind: 'local' }, 'bundle');
    this.emit({ kind: 'assign', targets: [b], expr: { op: 'bundle_new', args: [entries as Record<string, Operand>] } });
    return b;
  }
  /** `value`, or `fallback` when value is None. */
  orElse(value: SymTensor, fallback: SymTensor): SymTensor {
    return bindTensor(this, 'or_else', [value, fallback], value.shape ?? fallback.shape, value.dtype ?? fallback.dtype);
  }
  /** `a` when `cond` holds, else `b` (both already computed). */
  choose(cond: SymScalar, a: SymTensor, b: SymTensor): SymTensor {
    return bindTensor(this, 'choose', [cond, a, b], undefined, a.dtype);
  }

  // ---- functions
  where(cond: SymTensor, a: TensorOrScalar, b: TensorOrScalar): SymTensor {
    const ref = a instanceof SymTensor ? a : b instanceof SymTensor ? b : undefined;
    return bindTensor(this, 'where', [cond, a, b], ref?.shape ? broadcastShapes(cond.shape, ref.shape, 'where') : undefined, ref?.dtype);
  }
  /** `F.linear(x, weight, bias)` = x @ weight^T + bias. */
  linear(x: SymTensor, weight: SymTensor, bias?: SymTensor): SymTensor {
    return bindTensor(this, 'linear', bias ? [x, weight, bias] : [x, weight], linearShape(x.shape, weight.shape), x.dtype);
  }
  /** relu(x @ weight^T + bias) as one matrix product with the bias and relu fused (autocast's precision). */
  linearRelu(x: SymTensor, weight: SymTensor, bias: SymTensor): SymTensor {
    return bindTensor(this, 'addmm_relu', [x, weight, bias], linearShape(x.shape, weight.shape), x.dtype);
  }
  /**
   * A cached all-zero `[rows, cols]` matrix of `like`'s dtype and device (`zero_scratch`). The
   * caller must restore the zeros (scatter 0 where it wrote) before the program ends.
   */
  zeroScratch(rows: SymScalar, cols: SymScalar, like: SymTensor): SymTensor {
    return bindTensor(this, 'zero_scratch', [rows, cols, like], undefined, like.dtype);
  }
  /** Sum of `weights`-scaled rows of `table` picked by `indices` (F.embedding_bag, mode sum). */
  embeddingBag(indices: SymTensor, table: SymTensor, weights: SymTensor): SymTensor {
    const n = indices.shape?.[0];
    const d = table.shape?.[1];
    return bindTensor(this, 'embedding_bag', [indices, table, weights], n !== undefined && d !== undefined ? [n, d] : undefined, table.dtype);
  }
  /**
   * Sums of `weights`-scaled rows of `table` picked by the flat `indices`, one sum per bag, bag b
   * starting at `offsets[b]` (F.embedding_bag with offsets, mode sum; an empty bag sums to 0).
   */
  embeddingBags(indices: SymTensor, table: SymTensor, offsets: SymTensor, weights: SymTensor): SymTensor {
    const bags = offsets.shape?.[0];
    const d = table.shape?.[1];
    return bindTensor(this, 'embedding_bags', [indices, table, offsets, weights], bags !== undefined && d !== undefined ? [bags, d] : undefined, table.dtype);
  }
  /** `torch.einsum(equation, ...operands)`. */
  einsum(equation: string, ...operands: SymTensor[]): SymTensor {
    return bindTensor(this, 'einsum', [equation, ...operands]);
  }
  /** Mean cross-entropy of `logits` [N, V] against class ids `labels` [N]. */
  crossEntropy(logits: SymTensor, labels: SymTensor): SymTensor {
    return bindTensor(this, 'cross_entropy', [logits, labels], [], 'float32');
  }
  onesLike(t: SymTensor): SymTensor {
    return bindTensor(this, 'ones_like', [t], t.shape, t.dtype);
  }
  /** A one-entry dict `{key: value}` whose key is a program input (a name chosen per run). */
  dictOf(key: SymScalar, value: SymTensor): SymObject {
    const d = new SymObject(this, { kind: 'local' }, 'entry');
    this.emit({ kind: 'assign', targets: [d], expr: { op: 'dict_of', args: [key, value] } });
    return d;
  }
  /** Python's min of scalars. */
  min(a: ScalarLike, b: ScalarLike): SymScalar {
    return inlineScalar(this, 's_min', [a, b]);
  }
  max(a: ScalarLike, b: ScalarLike): SymScalar {
    return inlineScalar(this, 's_max', [a, b]);
  }
  /** The smallest positive value of a tensor's dtype (its smallest subnormal: 2^-149 for float32), as a Python float. */
  smallestPositive(t: SymTensor): SymScalar {
    return inlineScalar(this, 'finfo_smallest_subnormal', [t]);
  }
  /** The dtype's machine epsilon, as a Python float. */
  eps(t: SymTensor): SymScalar {
    return inlineScalar(this, 'finfo_eps', [t]);
  }

  // ---- random state and modules
  /** Seed torch's global generator. */
  manualSeed(seed: ScalarLike): void {
    effect(this, 'manual_seed', [seed]);
  }
  /**
   * The weight and bias of a new `torch.nn.Linear(dIn, dOut)`, with torch's default init
   * (which draws from the global generator: seed it first for reproducible weights).
   */
  nnLinear(dIn: ScalarLike, dOut: ScalarLike, device: SymObject, dtype: SymObject): { weight: SymTensor; bias: SymTensor } {
    const module = new SymObject(this, { kind: 'local' }, 'linear_module');
    this.emit({ kind: 'assign', targets: [module], expr: { op: 'nn_linear', args: [dIn, dOut, device, this.torchDtype(dtype)] } });
    return { weight: bindTensor(this, 'module_weight', [module]), bias: bindTensor(this, 'module_bias', [module]) };
  }

  /** Apply a custom autograd function (see defineAutogradFunction). */
  /**
   * Launch a Triton kernel over `grid` (one program per grid point) with its parameters by name
   * (tensors as pointers); the kernel's source goes into the program's.
   */
  launchTriton<N extends string>(kernel: TritonKernel<N>, grid: readonly ScalarLike[], args: Readonly<Record<N, SymTensor | ScalarLike>>): void {
    const existing = this.kernels.get(kernel.name);
    if (existing && existing.source !== kernel.source) throw new KernelBuildError(`two different Triton kernels are named '${kernel.name}'`);
    this.kernels.set(kernel.name, kernel);
    effect(this, 'triton_launch', [kernel.name, new PyTuple(grid), ...kernel.params.map((p) => args[p.name])]);
  }

  apply<TI extends string, TS extends string, TO extends string>(
    fn: AutogradFunction<TI, TS, TO>,
    tensors: Record<TI, SymTensor>,
    scalars: Record<TS, ScalarLike>,
  ): Record<TO, SymTensor> {
    const existing = this.functions.get(fn.name);
    if (existing && existing !== (fn as unknown as AutogradFunction)) {
      throw new KernelBuildError(`two different autograd functions are named '${fn.name}'`);
    }
    this.functions.set(fn.name, fn as unknown as AutogradFunction);
    for (const k of fn.kernels ?? []) this.kernels.set(k.name, k);
    const shapes = fn.inferShapes?.(tensors, scalars);
    const out = {} as Record<TO, SymTensor>;
    const targets = fn.outputs.map((k) => {
      const t = new SymTensor(this, { kind: 'local' }, k, shapes?.[k]?.shape, shapes?.[k]?.dtype);
      out[k] = t;
      return t;
    });
    const args: Operand[] = [fn.name, ...fn.tensorInputs.map((k) => tensors[k]), ...fn.scalarInputs.map((k) => scalars[k])];
    this.emit({ kind: 'assign', targets, expr: { op: 'apply', args } });
    return out;
  }
}
