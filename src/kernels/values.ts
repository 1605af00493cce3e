/**
 * The symbolic values programs are written with: a tensor, a Python scalar, a bundle (dict of
 * tensors) or an opaque object. Their methods are the op vocabulary seen from TypeScript: each
 * checks shapes where they are known and records a statement (or, for small scalar
 * arithmetic, an expression printed where it is used).
 */
import { PyDType, PyFloat, PyTuple, Value, type Binding, type Emitter, type Operand } from './ir.js';
import {
  broadcastShapes,
  matmulShape,
  reducedShape,
  replacedDim,
  transposedShape,
  unsqueezedShape,
} from './shapes.js';
import { KernelBuildError, type Dim, type KernelDType, type Shape } from './types.js';
import { VOCABULARY, type OpName } from './vocabulary.js';

export type ScalarLike = SymScalar | PyFloat | number | boolean;
export type TensorOrScalar = SymTensor | ScalarLike;

// ---------------------------------------------------------------- recording helpers

/** Record `tensor = op(args)` and return the new tensor. */
export function bindTensor(out: Emitter, op: OpName, args: readonly Operand[], shape?: Shape, dtype?: KernelDType, hint?: string): SymTensor {
  const t = new SymTensor(out, { kind: 'local' }, hint ?? VOCABULARY[op].hint, shape, dtype);
  out.emit({ kind: 'assign', targets: [t], expr: { op, args } });
  return t;
}

/** Record `scalar = op(args)` (for values that need a statement: a device sync, a loop variable). */
export function bindScalar(out: Emitter, op: OpName, args: readonly Operand[], hint?: string): SymScalar {
  const s = new SymScalar(out, { kind: 'local' }, hint ?? VOCABULARY[op].hint);
  out.emit({ kind: 'assign', targets: [s], expr: { op, args } });
  return s;
}

/** A scalar expression printed where it is used. */
export function inlineScalar(out: Emitter, op: OpName, args: readonly Operand[]): SymScalar {
  return new SymScalar(out, { kind: 'inline', expr: { op, args } }, VOCABULARY[op].hint);
}

/** Record a statement run for its effect. */
export function effect(out: Emitter, op: OpName, args: readonly Operand[]): void {
  out.emit({ kind: 'effect', expr: { op, args } });
}

// ---------------------------------------------------------------- values

/** A Python number or bool of the generated code. */
let runtimeDims = 0;

export class SymScalar extends Value {
  constructor(
    readonly out: Emitter,
    binding: Binding,
    hint: string,
  ) {
    super('scalar', binding, hint);
  }
  private op(op: OpName, o?: ScalarLike): SymScalar {
    return inlineScalar(this.out, op, o === undefined ? [this] : [this, o]);
  }
  add(o: ScalarLike): SymScalar {
    return this.op('s_add', o);
  }
  sub(o: ScalarLike): SymScalar {
    return this.op('s_sub', o);
  }
  mul(o: ScalarLike): SymScalar {
    return this.op('s_mul', o);
  }
  div(o: ScalarLike): SymScalar {
    return this.op('s_div', o);
  }
  floorDiv(o: ScalarLike): SymScalar {
    return this.op('s_floordiv', o);
  }
  mod(o: ScalarLike): SymScalar {
    return this.op('s_mod', o);
  }
  pow(o: ScalarLike): SymScalar {
    return this.op('s_pow', o);
  }
  gt(o: ScalarLike): SymScalar {
    return this.op('s_gt', o);
  }
  lt(o: ScalarLike): SymScalar {
    return this.op('s_lt', o);
  }
  eq(o: ScalarLike): SymScalar {
    return this.op('s_eq', o);
  }
  and(o: ScalarLike): SymScalar {
    return this.op('s_and', o);
  }
  not(): SymScalar {
    return this.op('s_not');
  }
  neg(): SymScalar {
    return this.op('s_neg');
  }
}

/** An opaque Python value (a module, a device, a dtype name), passed around but not computed on. */
export class SymObject extends Value {
  constructor(
    readonly out: Emitter,
    binding: Binding,
    hint: string,
  ) {
    super('object', binding, hint);
  }
}

/** A symbolic tensor: a variable of the generated function holding a torch.Tensor. */
export class SymTensor extends Value {
  constructor(
    readonly out: Emitter,
    binding: Binding,
    hint: string,
    readonly shape?: Shape,
    readonly dtype?: KernelDType,
  ) {
    super('tensor', binding, hint);
  }

  get rank(): number | undefined {
    return this.shape?.length;
  }

  private make(op: OpName, args: readonly Operand[], shape: Shape | undefined = this.shape, dtype: KernelDType | undefined = this.dtype): SymTensor {
    return bindTensor(this.out, op, args, shape, dtype);
  }
  private elementwise(op: OpName, o: TensorOrScalar): SymTensor {
    const shape = o instanceof SymTensor ? broadcastShapes(this.shape, o.shape, op) : this.shape;
    return this.make(op, [this, o], shape);
  }
  private inPlace(op: OpName, ...args: Operand[]): this {
    effect(this.out, op, [this, ...args]);
    return this;
  }

  // ---- arithmetic
  add(o: TensorOrScalar): SymTensor {
    return this.elementwise('add', o);
  }
  sub(o: TensorOrScalar): SymTensor {
    return this.elementwise('sub', o);
  }
  mul(o: TensorOrScalar): SymTensor {
    return this.elementwise('mul', o);
  }
  div(o: TensorOrScalar): SymTensor {
    return this.elementwise('div', o);
  }
  /** Elementwise comparison, giving a bool tensor. */
  gt(o: TensorOrScalar): SymTensor {
    return this.make('gt', [this, o], this.shape, 'bool');
  }
  pow(e: ScalarLike): SymTensor {
    return this.make('pow', [this, e]);
  }
  neg(): SymTensor {
    return this.make('neg', [this]);
  }
  relu(): SymTensor {
    return this.make('relu', [this]);
  }
  sqrt(): SymTensor {
    return this.make('sqrt', [this]);
  }
  sign(): SymTensor {
    return this.make('sign', [this]);
  }
  abs(): SymTensor {
    return this.make('abs', [this]);
  }
  exp(): SymTensor {
    return this.make('exp', [this]);
  }
  log(): SymTensor {
    return this.make('log', [this]);
  }
  detach(): SymTensor {
    return this.make('detach', [this]);
  }
  clone(): SymTensor {
    return this.make('clone', [this]);
  }
  contiguous(): SymTensor {
    return this.make('contiguous', [this]);
  }
  float(): SymTensor {
    return this.make('float', [this], this.shape, 'float32');
  }
  /** The same bytes read as another dtype of the same size (`x.view(dtype)`). */
  bitsAs(dtype: KernelDType): SymTensor {
    return this.make('bits_as', [this, new PyDType(dtype)], this.shape, dtype);
  }
  to(dtype: KernelDType): SymTensor {
    return this.make('to_dtype', [this, new PyDType(dtype)], this.shape, dtype);
  }
  typeAs(other: SymTensor): SymTensor {
    return this.make('type_as', [this, other], this.shape, other.dtype);
  }
  logSoftmax(dim: number): SymTensor {
    return this.make('log_softmax', [this, dim]);
  }
  softmax(dim: number): SymTensor {
    return this.make('softmax', [this, dim]);
  }
  /** Transpose of the last two dims (`.mT`). */
  get mT(): SymTensor {
    return this.make('mT', [this], transposedShape(this.shape));
  }
  matmul(o: SymTensor): SymTensor {
    return this.make('matmul', [this, o], matmulShape(this.shape, o.shape));
  }

  // ---- reductions
  sum(dim?: number | number[], keepdim = false): SymTensor {
    return this.reduce('sum', dim, keepdim);
  }
  mean(dim?: number | number[], keepdim = false): SymTensor {
    return this.reduce('mean', dim, keepdim);
  }
  private reduce(op: 'sum' | 'mean', dim: number | number[] | undefined, keepdim: boolean): SymTensor {
    const args: Operand[] = dim === undefined ? [this] : keepdim ? [this, dim, true] : [this, dim];
    return this.make(op, args, reducedShape(this.shape, dim, keepdim));
  }
  /** L2 norm over one dim (torch.norm), or the Frobenius norm over several. */
  norm(dim: number | readonly number[], keepdim = false): SymTensor {
    const dims = typeof dim === 'number' ? dim : new PyTuple(dim);
    return this.make('norm', [this, dims, keepdim], reducedShape(this.shape, dim, keepdim));
  }
  /** `torch.topk` (unsorted unless asked). */
  topk(k: ScalarLike, options: { dim?: number; sorted?: boolean } = {}): { values: SymTensor; indices: SymTensor } {
    const dim = options.dim ?? -1;
    const shape = replacedDim(this.shape, dim, typeof k === 'number' ? k : 'k');
    const values = new SymTensor(this.out, { kind: 'local' }, 'topk_values', shape, this.dtype);
    const indices = new SymTensor(this.out, { kind: 'local' }, 'topk_indices', shape, 'int64');
    this.out.emit({ kind: 'assign', targets: [values, indices], expr: { op: 'topk', args: [this, k, dim, options.sorted ?? false] } });
    return { values, indices };
  }
  /** The k smallest along `dim`, in ascending order. */
  bottomk(k: ScalarLike, dim = -1): { values: SymTensor; indices: SymTensor } {
    const shape = replacedDim(this.shape, dim, typeof k === 'number' ? k : 'k');
    const values = new SymTensor(this.out, { kind: 'local' }, 'bottomk_values', shape, this.dtype);
    const indices = new SymTensor(this.out, { kind: 'local' }, 'bottomk_indices', shape, 'int64');
    this.out.emit({ kind: 'assign', targets: [values, indices], expr: { op: 'bottomk', args: [this, k, dim] } });
    return { values, indices };
  }
  /** A stable sort along `dim`, with the positions it took the values from. */
  sort(options: { dim?: number; descending?: boolean } = {}): { values: SymTensor; indices: SymTensor } {
    const values = new SymTensor(this.out, { kind: 'local' }, 'sorted', this.shape, this.dtype);
    const indices = new SymTensor(this.out, { kind: 'local' }, 'order', this.shape, 'int64');
    this.out.emit({ kind: 'assign', targets: [values, indices], expr: { op: 'sort', args: [this, options.dim ?? -1, options.descending ?? false] } });
    return { values, indices };
  }
  /** Counts of each value 0..n-1 of this (integer, each in 0..n-1) 1-D tensor, without a host sync. */
  bincount(n: ScalarLike): SymTensor {
    return this.make('bincount', [this, n], undefined, 'int64');
  }
  cumsum(dim: number): SymTensor {
    return this.make('cumsum', [this, dim]);
  }
  /** The positions of the nonzero (true) entries of a 1-D tensor (a device sync). */
  nonzero(): SymTensor {
    return this.make('nonzero', [this], undefined, 'int64');
  }
  repeatInterleave(n: ScalarLike): SymTensor {
    return this.make('repeat_interleave', [this, n], undefined);
  }
  narrow(dim: number, start: ScalarLike, length: ScalarLike): SymTensor {
    return this.make('narrow', [this, dim, start, length], undefined);
  }
  clamp(lo: ScalarLike | null, hi: ScalarLike | null): SymTensor {
    return this.make('clamp', [this, lo, hi]);
  }
  floor(): SymTensor {
    return this.make('floor', [this]);
  }
  round(): SymTensor {
    return this.make('round', [this]);
  }
  /** The minimum along `dim`. */
  amin(dim: number): SymTensor {
    return this.make('amin', [this, dim], replacedDim(this.shape, dim, undefined));
  }
  ceil(): SymTensor {
    return this.make('ceil', [this]);
  }
  log2(): SymTensor {
    return this.make('log2', [this]);
  }
  /** 2 ** this. */
  exp2(): SymTensor {
    return this.make('exp2', [this]);
  }
  maximum(o: SymTensor): SymTensor {
    return this.make('maximum', [this, o]);
  }
  ge(o: TensorOrScalar): SymTensor {
    return this.make('ge', [this, o], this.shape, 'bool');
  }
  lt(o: TensorOrScalar): SymTensor {
    return this.make('lt', [this, o], this.shape, 'bool');
  }
  eq(o: TensorOrScalar): SymTensor {
    return this.make('eq', [this, o], this.shape, 'bool');
  }
  /** Elementwise logical and of bool tensors. */
  and(o: SymTensor): SymTensor {
    return this.make('and', [this, o], this.shape, 'bool');
  }
  /** Elementwise logical not of a bool tensor. */
  not(): SymTensor {
    return this.make('not', [this], this.shape, 'bool');
  }
  /** Integer shift right, elementwise (by a tensor of shifts). */
  shiftRight(o: TensorOrScalar): SymTensor {
    return this.make('shift_right', [this, o]);
  }
  /** Integer division rounding down, elementwise. */
  floorDiv(o: TensorOrScalar): SymTensor {
    return this.make('floor_div', [this, o]);
  }
  mod(o: TensorOrScalar): SymTensor {
    return this.make('mod', [this, o]);
  }
  /** Uniform [0, 1) numbers shaped as this tensor, from a generator seeded with `seed` (reproducible). */
  randomLike(seed: ScalarLike): SymTensor {
    return this.make('rand_seeded', [this, seed], this.shape, 'float32');
  }
  /** Max over `dim`, with positions. */
  max(dim: number): { values: SymTensor; indices: SymTensor } {
    const shape = replacedDim(this.shape, dim, undefined);
    const values = new SymTensor(this.out, { kind: 'local' }, 'max_values', shape, this.dtype);
    const indices = new SymTensor(this.out, { kind: 'local' }, 'max_indices', shape, 'int64');
    this.out.emit({ kind: 'assign', targets: [values, indices], expr: { op: 'max_dim', args: [this, dim] } });
    return { values, indices };
  }

  // ---- shapes and indexing
  reshape(...shape: (Dim | SymScalar)[]): SymTensor {
    for (const d of shape) if (typeof d === 'string') throw new KernelBuildError(`reshape needs concrete sizes, got symbol '${d}'`);
    const known = shape.every((d) => typeof d === 'number');
    return this.make('reshape', [this, ...(shape as Operand[])], known ? (shape as Dim[]) : undefined);
  }
  /** Reshape to another tensor's shape. */
  reshapeAs(other: SymTensor): SymTensor {
    return this.make('reshape_as', [this, other], other.shape);
  }
  flatten(start = 0, end = -1): SymTensor {
    return this.make('flatten', [this, start, end], undefined);
  }
  unflatten(dim: number, sizes: (number | SymScalar)[]): SymTensor {
    return this.make('unflatten', [this, dim, ...sizes], undefined);
  }
  unsqueeze(dim: number): SymTensor {
    return this.make('unsqueeze', [this, dim], unsqueezedShape(this.shape, dim));
  }
  /** Drop a dim of size 1. */
  squeeze(dim: number): SymTensor {
    return this.make('squeeze', [this, dim], replacedDim(this.shape, dim, undefined));
  }
  /** `x.gather(dim, index)`: the entries of `x` at `index` along `dim` (shaped as index). */
  gather(dim: number, index: SymTensor): SymTensor {
    return this.make('gather', [this, dim, index], index.shape);
  }
  /** `x[None]`: a leading dim of 1. */
  get leadingUnit(): SymTensor {
    return this.make('none_index', [this], this.shape ? [1, ...this.shape] : undefined);
  }
  /** `x[index]`: rows picked by a mask or index tensor. */
  select(index: SymTensor): SymTensor {
    return this.make('index', [this, index], undefined);
  }
  /** `x[rows, cols]`: entries picked by two index tensors (broadcast together). */
  select2(rows: SymTensor, cols: SymTensor): SymTensor {
    return this.make('index2', [this, rows, cols], undefined);
  }
  /** The rows where `mask` holds, or every row when the mask is None. */
  rowsWhere(mask: SymTensor): SymTensor {
    return this.make('rows_where', [this, mask], undefined);
  }
  /** `x[..., start:end]` along `dim` (either end may be left open with null). */
  slice(dim: number, start: number | null, end: number | null): SymTensor {
    if (dim < 0) throw new KernelBuildError('slice takes a non-negative dim');
    return this.make('slice', [this, dim, start, end], undefined);
  }
  /** The i-th of `n` chunks along dim 0 (`x.chunk(n)[i]`). */
  chunkAt(n: ScalarLike, i: ScalarLike): SymTensor {
    return this.make('chunk_at', [this, n, i], undefined);
  }
  /** A copy of this tensor with `value` written at the rows where `mask` holds. */
  indexPut(mask: SymTensor, value: SymTensor): SymTensor {
    return this.make('index_put', [this, mask, value]);
  }
  /** A tensor of zeros of `sizes` with this tensor's dtype and device. */
  newZeros(sizes: readonly (number | SymScalar)[]): SymTensor {
    // Sizes known only at run time have no static dimension: give them unique symbolic names.
    const shape = sizes.map((n) => (typeof n === 'number' ? n : `runtime_dim_${(runtimeDims += 1)}`));
    return this.make('new_zeros', [this, new PyTuple(sizes)], shape);
  }

  /** Size of one dimension, as a Python int. */
  size(dim: number): SymScalar {
    return inlineScalar(this.out, 'shape_at', [this, dim]);
  }
  /** The value of a one-element tensor as a Python float (a device sync). */
  item(): SymScalar {
    return bindScalar(this.out, 'item', [this]);
  }
  /** A one-element tensor as a Python int (a device sync). */
  int(): SymScalar {
    return bindScalar(this.out, 'to_int', [this]);
  }
  /** The `.grad` of a leaf tensor (None when there is none). */
  get grad(): SymTensor {
    return bindTensor(this.out, 'grad', [this], this.shape, this.dtype, `${this.hint}_grad`);
  }

  // ---- in place: each records a statement and returns this tensor
  copy_(src: SymTensor): this {
    return this.inPlace('copy_', src);
  }
  zero_(): this {
    return this.inPlace('zero_');
  }
  add_(o: TensorOrScalar, alpha?: ScalarLike): this {
    return alpha === undefined ? this.inPlace('add_', o) : this.inPlace('add_', o, alpha);
  }
  sub_(o: TensorOrScalar): this {
    return this.inPlace('sub_', o);
  }
  mul_(o: TensorOrScalar): this {
    return this.inPlace('mul_', o);
  }
  div_(o: TensorOrScalar): this {
    return this.inPlace('div_', o);
  }
  lerp_(end: SymTensor, weight: ScalarLike): this {
    return this.inPlace('lerp_', end, weight);
  }
  indexAdd_(dim: number, index: SymTensor, source: SymTensor): this {
    return this.inPlace('index_add_', dim, index, source);
  }
  scatter_(dim: number, index: SymTensor, source: SymTensor | number): this {
    return this.inPlace('scatter_', dim, index, source);
  }
  /** `x.index_fill_(dim, index, value)`: as `x[index] = value` along dim 0, without copying the value from the host (a sync on CUDA). */
  indexFill_(dim: number, index: SymTensor, value: ScalarLike): this {
    return this.inPlace('index_fill_', dim, index, value);
  }
  /** `x.masked_fill_(mask, value)`: as `x[mask] = value`, without the host sync of boolean indexing on CUDA. */
  maskedFill_(mask: SymTensor, value: ScalarLike): this {
    return this.inPlace('masked_fill_', mask, value);
  }
  scatterAdd_(dim: number, index: SymTensor, source: SymTensor): this {
    return this.inPlace('scatter_add_', dim, index, source);
  }
  /** `x[index] = max(x[index], source)` along `dim`. */
  scatterMax_(dim: number, index: SymTensor, source: SymTensor): this {
    return this.inPlace('scatter_amax_', dim, index, source);
  }
  requiresGrad_(on = true): this {
    return this.inPlace('requires_grad_', on);
  }
  addcmul_(t1: SymTensor, t2: SymTensor, value: ScalarLike): this {
    return this.inPlace('addcmul_', t1, t2, value);
  }
  addcdiv_(t1: SymTensor, t2: SymTensor, value: ScalarLike): this {
    return this.inPlace('addcdiv_', t1, t2, value);
  }
  /** `x[index] = value` (index: a mask or an index tensor). */
  setAt_(index: SymTensor, value: TensorOrScalar): this {
    return this.inPlace('set_index', index, value);
  }
  /** `x[rows, cols] = value`. */
  setAt2_(rows: SymTensor, cols: SymTensor, value: TensorOrScalar): this {
    return this.inPlace('set_index2', rows, cols, value);
  }
  /** `x[rows, cols] += value`, repeated positions adding up (`index_put_` with accumulate). */
  addAt2_(rows: SymTensor, cols: SymTensor, value: SymTensor): this {
    return this.inPlace('add_index2', rows, cols, value);
  }
  /** Drop the gradient (`x.grad = None`). */
  clearGrad(): void {
    effect(this.out, 'clear_grad', [this]);
  }
  /** Backpropagate from this tensor. */
  backward(gradient?: SymTensor): void {
    effect(this.out, 'backward', gradient ? [this, gradient] : [this]);
  }
}

/** A dict of named tensors held as one handle (a coder's parameters, optimizer state). */
export class SymBundle<K extends string = string> extends Value {
  constructor(
    readonly out: Emitter,
    binding: Binding,
    hint: string,
  ) {
    super('bundle', binding, hint);
  }
  /** The tensor stored under `key`. */
  get(key: K, shape?: Shape, dtype?: KernelDType): SymTensor {
    return bindTensor(this.out, 'bundle_get', [this, key], shape, dtype, key);
  }
  /** The tensor under `key`, or None when the bundle lacks it. */
  maybe(key: K, shape?: Shape, dtype?: KernelDType): SymTensor {
    return bindTensor(this.out, 'bundle_maybe', [this, key], shape, dtype, key);
  }
  /** The tensor under a key held in a program input (a name chosen per run). */
  at(key: SymScalar): SymTensor {
    return bindTensor(this.out, 'bundle_get', [this, key], undefined, undefined, 'item');
  }
  has(key: K): SymScalar {
    return inlineScalar(this.out, 'bundle_has', [this, key]);
  }
  set(key: K, value: SymTensor): void {
    effect(this.out, 'set_key', [this, key, value]);
  }
}
