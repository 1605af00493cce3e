/**
 * A small typed language for tensor programs, written in TypeScript and lowered to Python
 * source made of torch calls. The runtime compiles each program once; the hot loop then
 * calls it with one bridge round trip.
 *
 * Values are symbolic: a {@link Sym} is a Python variable of the generated function. Shapes
 * are tracked where they are known, so mismatches are TypeScript errors at build time
 * rather than Python tracebacks at run time.
 */

/** A dimension: a number, or a symbolic name such as 'N'. */
export type Dim = number | string;
export type Shape = readonly Dim[];
export type KernelDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'bool' | 'uint8';

/** Thrown while a program is being built (shape mismatch, misuse of the builder). */
export class KernelBuildError extends Error {
  override name = 'KernelBuildError';
}

type Stmt = { line: string } | { header: string; body: Stmt[] };

/** Anything that lowers to a Python expression. */
export interface Sym {
  readonly code: string;
}

/** A Python number or bool in the generated code. */
export class Scalar implements Sym {
  constructor(
    readonly fn: FunctionBuilder,
    readonly code: string,
  ) {}
  add(o: ScalarLike): Scalar {
    return this.fn.scalarExpr(`(${this.code} + ${lit(o)})`);
  }
  sub(o: ScalarLike): Scalar {
    return this.fn.scalarExpr(`(${this.code} - ${lit(o)})`);
  }
  mul(o: ScalarLike): Scalar {
    return this.fn.scalarExpr(`(${this.code} * ${lit(o)})`);
  }
  div(o: ScalarLike): Scalar {
    return this.fn.scalarExpr(`(${this.code} / ${lit(o)})`);
  }
  floorDiv(o: ScalarLike): Scalar {
    return this.fn.scalarExpr(`(${this.code} // ${lit(o)})`);
  }
  gt(o: ScalarLike): Scalar {
    return this.fn.scalarExpr(`(${this.code} > ${lit(o)})`);
  }
  lt(o: ScalarLike): Scalar {
    return this.fn.scalarExpr(`(${this.code} < ${lit(o)})`);
  }
  eq(o: ScalarLike): Scalar {
    return this.fn.scalarExpr(`(${this.code} == ${lit(o)})`);
  }
  and(o: ScalarLike): Scalar {
    return this.fn.scalarExpr(`(${this.code} and ${lit(o)})`);
  }
  not(): Scalar {
    return this.fn.scalarExpr(`(not ${this.code})`);
  }
}

export type ScalarLike = Scalar | number | boolean;
export type TensorOrScalar = Tensor | ScalarLike;

/** Python literal (or the variable) for a value. */
export function lit(v: unknown): string {
  if (v instanceof Tensor || v instanceof Scalar || v instanceof PyExpr || v instanceof Bundle) return v.code;
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return "float('nan')";
    if (!Number.isFinite(v)) return v > 0 ? "float('inf')" : "float('-inf')";
    return String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(lit).join(', ')}]`;
  if (typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${JSON.stringify(k)}: ${lit(x)}`)
      .join(', ')}}`;
  }
  throw new KernelBuildError(`cannot write ${String(v)} as a Python literal`);
}

/** An opaque Python value (a module, a dict, a dtype), passed around but not computed on. */
export class PyExpr implements Sym {
  constructor(
    readonly fn: FunctionBuilder,
    readonly code: string,
  ) {}
}

function dimsEqual(a: Dim, b: Dim): boolean {
  return a === b;
}

function fmtShape(s: Shape | undefined): string {
  return s ? `[${s.join(', ')}]` : '[?]';
}

/** Broadcast two known shapes, or throw. Unknown in, unknown out. */
function broadcast(a: Shape | undefined, b: Shape | undefined, what: string): Shape | undefined {
  if (!a || !b) return undefined;
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === 1) out.push(y);
    else if (y === 1 || dimsEqual(x, y)) out.push(x);
    else if (typeof x === 'number' && typeof y === 'number') {
      throw new KernelBuildError(`${what}: shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast`);
    } else out.push(typeof x === 'number' ? x : y); // symbolic vs other: trust the caller
  }
  return out;
}

function normDim(dim: number, rank: number): number {
  return dim < 0 ? dim + rank : dim;
}

/** A symbolic tensor: a Python variable holding a torch.Tensor. */
export class Tensor implements Sym {
  constructor(
    readonly fn: FunctionBuilder,
    readonly code: string,
    readonly shape?: Shape,
    readonly dtype?: KernelDType,
  ) {}

  get rank(): number | undefined {
    return this.shape?.length;
  }

  private elementwise(op: string, o: TensorOrScalar, name: string): Tensor {
    const shape = o instanceof Tensor ? broadcast(this.shape, o.shape, name) : this.shape;
    return this.fn.tensor(`${this.code} ${op} ${lit(o)}`, shape, this.dtype);
  }
  add(o: TensorOrScalar): Tensor {
    return this.elementwise('+', o, 'add');
  }
  sub(o: TensorOrScalar): Tensor {
    return this.elementwise('-', o, 'sub');
  }
  mul(o: TensorOrScalar): Tensor {
    return this.elementwise('*', o, 'mul');
  }
  div(o: TensorOrScalar): Tensor {
    return this.elementwise('/', o, 'div');
  }
  pow(e: ScalarLike): Tensor {
    return this.fn.tensor(`${this.code}.pow(${lit(e)})`, this.shape, this.dtype);
  }
  neg(): Tensor {
    return this.fn.tensor(`-${this.code}`, this.shape, this.dtype);
  }
  /** Elementwise comparison, giving a bool tensor. */
  gt(o: TensorOrScalar): Tensor {
    return this.fn.tensor(`${this.code} > ${lit(o)}`, this.shape, 'bool');
  }
  private unary(method: string): Tensor {
    return this.fn.tensor(`${this.code}.${method}()`, this.shape, this.dtype);
  }
  relu(): Tensor {
    return this.fn.tensor(`F.relu(${this.code})`, this.shape, this.dtype);
  }
  sqrt(): Tensor {
    return this.unary('sqrt');
  }
  sign(): Tensor {
    return this.unary('sign');
  }
  abs(): Tensor {
    return this.unary('abs');
  }
  exp(): Tensor {
    return this.unary('exp');
  }
  log(): Tensor {
    return this.unary('log');
  }
  detach(): Tensor {
    return this.unary('detach');
  }
  clone(): Tensor {
    return this.unary('clone');
  }
  contiguous(): Tensor {
    return this.unary('contiguous');
  }
  float(): Tensor {
    return this.fn.tensor(`${this.code}.float()`, this.shape, 'float32');
  }
  to(dtype: KernelDType): Tensor {
    return this.fn.tensor(`${this.code}.to(torch.${dtype})`, this.shape, dtype);
  }
  typeAs(other: Tensor): Tensor {
    return this.fn.tensor(`${this.code}.type_as(${other.code})`, this.shape, other.dtype);
  }
  logSoftmax(dim: number): Tensor {
    return this.fn.tensor(`F.log_softmax(${this.code}, dim=${dim})`, this.shape, this.dtype);
  }
  softmax(dim: number): Tensor {
    return this.fn.tensor(`F.softmax(${this.code}, dim=${dim})`, this.shape, this.dtype);
  }

  /** Transpose of the last two dims (`.mT`). */
  get mT(): Tensor {
    const s = this.shape;
    const shape = s && s.length >= 2 ? [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!] : s;
    return this.fn.tensor(`${this.code}.mT`, shape, this.dtype);
  }

  matmul(o: Tensor): Tensor {
    const a = this.shape;
    const b = o.shape;
    let shape: Shape | undefined;
    if (a && b && a.length === 2 && b.length === 2) {
      const [n, k1] = a as [Dim, Dim];
      const [k2, m] = b as [Dim, Dim];
      if (!dimsEqual(k1, k2) && typeof k1 === 'number' && typeof k2 === 'number') {
        throw new KernelBuildError(`matmul: inner dims differ, ${fmtShape(a)} @ ${fmtShape(b)}`);
      }
      if (!dimsEqual(k1, k2) && (typeof k1 === 'string') === (typeof k2 === 'string')) {
        throw new KernelBuildError(`matmul: inner dims differ, ${fmtShape(a)} @ ${fmtShape(b)}`);
      }
      shape = [n, m];
    }
    return this.fn.tensor(`${this.code} @ ${o.code}`, shape, this.dtype);
  }

  sum(dim?: number | number[], keepdim = false): Tensor {
    return this.reduce('sum', dim, keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return this.reduce('mean', dim, keepdim);
  }
  private reduce(method: string, dim: number | number[] | undefined, keepdim: boolean): Tensor {
    if (dim === undefined) return this.fn.tensor(`${this.code}.${method}()`, [], this.dtype);
    const dims = Array.isArray(dim) ? dim : [dim];
    const s = this.shape;
    const shape = s
      ? s.flatMap((d, i) => (dims.map((x) => normDim(x, s.length)).includes(i) ? (keepdim ? [1] : []) : [d]))
      : undefined;
    return this.fn.tensor(`${this.code}.${method}(${lit(dim)}${keepdim ? ', keepdim=True' : ''})`, shape, this.dtype);
  }

  /** L2 norm over `dim` (torch.norm, as the reference spells it). */
  norm(dim: number, keepdim = false): Tensor {
    const s = this.shape;
    const shape = s ? s.flatMap((d, i) => (i === normDim(dim, s.length) ? (keepdim ? [1] : []) : [d])) : undefined;
    return this.fn.tensor(`torch.norm(${this.code}, dim=${dim}, keepdim=${lit(keepdim)})`, shape, this.dtype);
  }

  /** `torch.topk` (unsorted unless asked). */
  topk(k: ScalarLike, options: { dim?: number; sorted?: boolean } = {}): { values: Tensor; indices: Tensor } {
    const dim = options.dim ?? -1;
    const s = this.shape;
    const kDim: Dim = typeof k === 'number' ? k : 'k';
    const shape = s ? s.map((d, i) => (i === normDim(dim, s.length) ? kDim : d)) : undefined;
    const [values, indices] = this.fn.tuple(
      `torch.topk(${this.code}, ${lit(k)}, dim=${dim}, sorted=${lit(options.sorted ?? false)})`,
      2,
    );
    return { values: new Tensor(this.fn, values!, shape, this.dtype), indices: new Tensor(this.fn, indices!, shape, 'int64') };
  }

  /** Max over `dim`, with positions. */
  max(dim: number): { values: Tensor; indices: Tensor } {
    const s = this.shape;
    const shape = s ? s.filter((_, i) => i !== normDim(dim, s.length)) : undefined;
    const [values, indices] = this.fn.tuple(`${this.code}.max(dim=${dim})`, 2);
    return { values: new Tensor(this.fn, values!, shape, this.dtype), indices: new Tensor(this.fn, indices!, shape, 'int64') };
  }

  reshape(...shape: (Dim | Scalar)[]): Tensor {
    const known = shape.every((d) => typeof d === 'number' || typeof d === 'string');
    return this.fn.tensor(`${this.code}.reshape(${shape.map(dimCode).join(', ')})`, known ? (shape as Dim[]) : undefined, this.dtype);
  }
  flatten(start = 0, end = -1): Tensor {
    return this.fn.tensor(`${this.code}.flatten(${start}, ${end})`, undefined, this.dtype);
  }
  unflatten(dim: number, sizes: (Dim | Scalar)[]): Tensor {
    return this.fn.tensor(`${this.code}.unflatten(${dim}, (${sizes.map(dimCode).join(', ')},))`, undefined, this.dtype);
  }
  unsqueeze(dim: number): Tensor {
    const s = this.shape;
    let shape: Dim[] | undefined;
    if (s) {
      shape = [...s];
      shape.splice(dim < 0 ? dim + s.length + 1 : dim, 0, 1);
    }
    return this.fn.tensor(`${this.code}.unsqueeze(${dim})`, shape, this.dtype);
  }
  /** `x[None]`: a leading dim of 1. */
  get leadingUnit(): Tensor {
    return this.fn.tensor(`${this.code}[None]`, this.shape ? [1, ...this.shape] : undefined, this.dtype);
  }

  /** Size of one dimension, as a Python int. */
  size(dim: number): Scalar {
    return this.fn.scalarExpr(`${this.code}.shape[${dim}]`);
  }
  /** The value of a one-element tensor as a Python float (a device sync). */
  item(): Scalar {
    return this.fn.scalar(`${this.code}.item()`);
  }
  /** A one-element tensor as a Python int (a device sync). */
  int(): Scalar {
    return this.fn.scalar(`int(${this.code})`);
  }

  /** The `.grad` of a leaf tensor (None when there is none). */
  get grad(): Tensor {
    return this.fn.tensor(`${this.code}.grad`, this.shape, this.dtype);
  }

  // ---- in-place ops: they emit a statement and return this tensor
  private inplace(call: string): this {
    this.fn.emit(`${this.code}.${call}`);
    return this;
  }
  copy_(src: Tensor): this {
    return this.inplace(`copy_(${src.code})`);
  }
  zero_(): this {
    return this.inplace('zero_()');
  }
  add_(o: TensorOrScalar, alpha?: ScalarLike): this {
    return this.inplace(`add_(${lit(o)}${alpha === undefined ? '' : `, alpha=${lit(alpha)}`})`);
  }
  sub_(o: TensorOrScalar): this {
    return this.inplace(`sub_(${lit(o)})`);
  }
  mul_(o: TensorOrScalar): this {
    return this.inplace(`mul_(${lit(o)})`);
  }
  div_(o: TensorOrScalar): this {
    return this.inplace(`div_(${lit(o)})`);
  }
  lerp_(end: Tensor, weight: ScalarLike): this {
    return this.inplace(`lerp_(${end.code}, ${lit(weight)})`);
  }
  indexAdd_(dim: number, index: Tensor, source: Tensor): this {
    return this.inplace(`index_add_(${dim}, ${index.code}, ${source.code})`);
  }
  requiresGrad_(on = true): this {
    return this.inplace(`requires_grad_(${lit(on)})`);
  }
  addcmul_(t1: Tensor, t2: Tensor, value: ScalarLike): this {
    return this.inplace(`addcmul_(${t1.code}, ${t2.code}, value=${lit(value)})`);
  }
  addcdiv_(t1: Tensor, t2: Tensor, value: ScalarLike): this {
    return this.inplace(`addcdiv_(${t1.code}, ${t2.code}, value=${lit(value)})`);
  }
  /** `x[index] = value` (index: a mask or an index tensor). */
  setAt_(index: Tensor, value: TensorOrScalar): this {
    this.fn.emit(`${this.code}[${index.code}] = ${lit(value)}`);
    return this;
  }
  /** `x[index]`: rows picked by a mask or index tensor. */
  select(index: Tensor): Tensor {
    return this.fn.tensor(`${this.code}[${index.code}]`, undefined, this.dtype);
  }
  /** Reshape to another tensor's shape. */
  reshapeAs(other: Tensor): Tensor {
    return this.fn.tensor(`${this.code}.reshape(${other.code}.shape)`, other.shape, this.dtype);
  }
  /** The i-th of `n` chunks along dim 0 (`x.chunk(n)[i]`). */
  chunkAt(n: ScalarLike, i: ScalarLike): Tensor {
    return this.fn.tensor(`${this.code}.chunk(${lit(n)})[${lit(i)}]`, undefined, this.dtype);
  }
  /** Backpropagate from this tensor. */
  backward(gradient?: Tensor): void {
    this.fn.emit(`${this.code}.backward(${gradient ? gradient.code : ''})`);
  }
}

function dimCode(d: Dim | Scalar): string {
  if (d instanceof Scalar) return d.code;
  if (typeof d === 'string') throw new KernelBuildError(`reshape needs concrete sizes, got symbol '${d}'`);
  return String(d);
}

/** A dict of named tensors held as one handle (a coder's parameters, optimizer state). */
export class Bundle<K extends string = string> implements Sym {
  constructor(
    readonly fn: FunctionBuilder,
    readonly code: string,
  ) {}
  /** The tensor stored under `key`. */
  get(key: K, shape?: Shape, dtype?: KernelDType): Tensor {
    return this.fn.tensor(`${this.code}[${JSON.stringify(key)}]`, shape, dtype);
  }
  /** The tensor under `key`, or None when the bundle lacks it. */
  maybe(key: K, shape?: Shape, dtype?: KernelDType): Tensor {
    return this.fn.tensor(`${this.code}.get(${JSON.stringify(key)})`, shape, dtype);
  }
  has(key: K): Scalar {
    return this.fn.scalarExpr(`(${JSON.stringify(key)} in ${this.code})`);
  }
  set(key: K, value: Tensor): void {
    this.fn.emit(`${this.code}[${JSON.stringify(key)}] = ${value.code}`);
  }
}

/** Builds the body of one Python function. */
export class FunctionBuilder {
  private readonly root: Stmt[] = [];
  private stack: Stmt[][] = [this.root];
  private counter = 0;
  /** Autograd functions used, to be defined before the entry function. */
  readonly functions = new Map<string, AutogradFunction>();

  constructor(readonly params: string[] = []) {}

  emit(line: string): void {
    this.stack[this.stack.length - 1]!.push({ line });
  }

  /** Open an indented block (`if ...:`, `with ...:`) around `body`. */
  block(header: string, body: () => void): void {
    const stmts: Stmt[] = [];
    this.stack[this.stack.length - 1]!.push({ header, body: stmts });
    this.stack.push(stmts);
    try {
      body();
    } finally {
      this.stack.pop();
    }
    if (stmts.length === 0) stmts.push({ line: 'pass' });
  }

  fresh(prefix = 'v'): string {
    this.counter += 1;
    return `${prefix}${this.counter}`;
  }

  /** Assign `expr` to a new variable holding a tensor. */
  tensor(expr: string, shape?: Shape, dtype?: KernelDType): Tensor {
    const name = this.fresh();
    this.emit(`${name} = ${expr}`);
    return new Tensor(this, name, shape, dtype);
  }

  /** Assign `expr` to a new variable holding a Python scalar. */
  scalar(expr: string): Scalar {
    const name = this.fresh();
    this.emit(`${name} = ${expr}`);
    return new Scalar(this, name);
  }

  /** A scalar expression used inline (no statement). */
  scalarExpr(expr: string): Scalar {
    return new Scalar(this, expr);
  }

  /** Unpack a tuple-valued expression into `n` new variables. */
  tuple(expr: string, n: number): string[] {
    const names = Array.from({ length: n }, () => this.fresh());
    this.emit(`${names.join(', ')} = ${expr}`);
    return names;
  }

  /** Lines of Python, indented by `indent` levels. */
  lines(indent: number): string[] {
    const out: string[] = [];
    const walk = (stmts: Stmt[], depth: number): void => {
      for (const s of stmts) {
        const pad = '    '.repeat(depth);
        if ('line' in s) out.push(pad + s.line);
        else {
          out.push(`${pad}${s.header}:`);
          walk(s.body, depth + 1);
        }
      }
    };
    walk(this.root, indent);
    return out;
  }
}

/** An input declared by a program. */
export type InputDecl =
  | { name: string; kind: 'tensor'; shape?: Shape; dtype?: KernelDType; optional?: boolean }
  | { name: string; kind: 'scalar' }
  | { name: string; kind: 'bundle' }
  | { name: string; kind: 'object' };

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The builder handed to a program's body: declares inputs, offers torch functions. */
export class ProgramBuilder extends FunctionBuilder {
  readonly inputs: InputDecl[] = [];

  private declare(decl: InputDecl): string {
    if (!IDENT.test(decl.name)) throw new KernelBuildError(`input name '${decl.name}' is not a valid identifier`);
    if (this.inputs.some((i) => i.name === decl.name)) throw new KernelBuildError(`input '${decl.name}' declared twice`);
    this.inputs.push(decl);
    return decl.name;
  }

  /** A tensor argument. */
  input(name: string, spec: { shape?: Shape; dtype?: KernelDType } = {}): Tensor {
    return new Tensor(this, this.declare({ name, kind: 'tensor', ...spec }), spec.shape, spec.dtype);
  }
  /** A tensor argument that may be None (test it with {@link ProgramBuilder.isNone}). */
  optionalInput(name: string, spec: { shape?: Shape; dtype?: KernelDType } = {}): Tensor {
    return new Tensor(this, this.declare({ name, kind: 'tensor', optional: true, ...spec }), spec.shape, spec.dtype);
  }
  /** A Python number/bool argument. */
  scalarInput(name: string): Scalar {
    return new Scalar(this, this.declare({ name, kind: 'scalar' }));
  }
  /** A dict-of-tensors argument. */
  bundleInput<K extends string>(name: string): Bundle<K> {
    return new Bundle<K>(this, this.declare({ name, kind: 'bundle' }));
  }
  /** Any other Python object (a model, a string). */
  objectInput(name: string): PyExpr {
    return new PyExpr(this, this.declare({ name, kind: 'object' }));
  }

  isNone(t: Sym): Scalar {
    return this.scalarExpr(`(${t.code} is None)`);
  }

  // ---- control flow
  /** `if cond:` then/else, each branch producing the same named outputs. */
  ifElse<R extends Record<string, Tensor | Scalar>>(cond: Scalar, then: () => R, otherwise: () => R): R {
    const names: Record<string, string> = {};
    let thenOut: R | undefined;
    this.block(`if ${cond.code}`, () => {
      thenOut = then();
      for (const [k, v] of Object.entries(thenOut)) {
        names[k] = this.fresh();
        this.emit(`${names[k]} = ${v.code}`);
      }
    });
    this.block('else', () => {
      const out = otherwise();
      for (const k of Object.keys(names)) {
        const v = out[k];
        if (!v) throw new KernelBuildError(`ifElse: the else branch lacks output '${k}'`);
        this.emit(`${names[k]} = ${v.code}`);
      }
    });
    const result: Record<string, Tensor | Scalar> = {};
    for (const [k, v] of Object.entries(thenOut!)) {
      result[k] = v instanceof Tensor ? new Tensor(this, names[k]!, v.shape, v.dtype) : new Scalar(this, names[k]!);
    }
    return result as R;
  }

  /** Statements run only when `cond` holds. */
  when(cond: Scalar, body: () => void): void {
    this.block(`if ${cond.code}`, body);
  }

  /** `for i in range(n):` around `body`. */
  forRange(n: ScalarLike, body: (i: Scalar) => void): void {
    const i = this.fresh('i');
    this.block(`for ${i} in range(${lit(n)})`, () => body(new Scalar(this, i)));
  }

  // ---- collectives (no-ops unless torch.distributed is running with several ranks)
  /** In place over all ranks: 'mean', 'sum' or 'max' (for bool tensors, a logical or). */
  allReduce_(t: Tensor, how: 'mean' | 'sum' | 'max'): void {
    this.emit(`_all_reduce_(${t.code}, ${JSON.stringify(how)})`);
  }
  /** Average the gradients of `params` across ranks in one flattened collective. */
  allReduceGrads_(params: Tensor[]): void {
    this.emit(`_all_reduce_grads_([${params.map((p) => p.code).join(', ')}])`);
  }
  /** Send `t` from rank `src` to every rank, in place. */
  broadcast_(t: Tensor, src: ScalarLike): void {
    this.emit(`_broadcast_(${t.code}, ${lit(src)})`);
  }
  /** This process's rank (0 when not distributed). */
  rank(): Scalar {
    return this.scalarExpr('_rank()');
  }
  worldSize(): Scalar {
    return this.scalarExpr('_world_size()');
  }

  /** Statements run without autograd recording. */
  noGrad(body: () => void): void {
    this.block('with torch.no_grad()', body);
  }

  // ---- constructors and functions
  zerosLike(t: Tensor): Tensor {
    return this.tensor(`torch.zeros_like(${t.code})`, t.shape, t.dtype);
  }
  fullLike(t: Tensor, value: ScalarLike): Tensor {
    return this.tensor(`torch.full_like(${t.code}, ${lit(value)})`, t.shape, t.dtype);
  }
  /** A 0-d tensor of `value` on `like`'s device and dtype. */
  scalarTensor(like: Tensor, value: number): Tensor {
    return this.tensor(`${like.code}.new_tensor(${this.float(value).code})`, [], like.dtype);
  }
  /** A Python float literal (JS cannot tell 1 from 1.0; Python can). */
  float(value: number): Scalar {
    const text = lit(value);
    return this.scalarExpr(/^-?\d+$/.test(text) ? `${text}.0` : text);
  }
  /** `torch.arange(start, end, step)` on `like`'s device. */
  arange(start: ScalarLike, end: ScalarLike, step: ScalarLike, like: Tensor): Tensor {
    return this.tensor(`torch.arange(${lit(start)}, ${lit(end)}, ${lit(step)}, device=${like.code}.device)`, undefined, 'int64');
  }
  where(cond: Tensor, a: TensorOrScalar, b: TensorOrScalar): Tensor {
    const ref = a instanceof Tensor ? a : b instanceof Tensor ? b : undefined;
    return this.tensor(`torch.where(${cond.code}, ${lit(a)}, ${lit(b)})`, ref?.shape ? broadcast(cond.shape, ref.shape, 'where') : undefined, ref?.dtype);
  }
  /** `F.linear(x, weight, bias)` = x @ weight^T + bias. */
  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    const [n] = x.shape ?? [];
    const [m, d] = weight.shape ?? [];
    const dx = x.shape?.[x.shape.length - 1];
    if (dx !== undefined && d !== undefined && typeof dx === 'number' && typeof d === 'number' && dx !== d) {
      throw new KernelBuildError(`linear: input width ${dx} but weight is ${fmtShape(weight.shape)}`);
    }
    const shape = x.shape && x.shape.length === 2 && m !== undefined ? [n!, m] : undefined;
    return this.tensor(`F.linear(${x.code}, ${weight.code}${bias ? `, ${bias.code}` : ''})`, shape, x.dtype);
  }
  /** Sum of `weights`-scaled rows of `table` picked by `indices` (F.embedding_bag, mode sum). */
  embeddingBag(indices: Tensor, table: Tensor, weights: Tensor): Tensor {
    const n = indices.shape?.[0];
    const d = table.shape?.[1];
    return this.tensor(
      `F.embedding_bag(${indices.code}, ${table.code}, mode="sum", per_sample_weights=${weights.code})`,
      n !== undefined && d !== undefined ? [n, d] : undefined,
      table.dtype,
    );
  }
  /** Python's min of scalars. */
  min(a: ScalarLike, b: ScalarLike): Scalar {
    return this.scalarExpr(`min(${lit(a)}, ${lit(b)})`);
  }
  max(a: ScalarLike, b: ScalarLike): Scalar {
    return this.scalarExpr(`max(${lit(a)}, ${lit(b)})`);
  }
  /** The dtype's machine epsilon, as a Python float. */
  eps(t: Tensor): Scalar {
    return this.scalarExpr(`torch.finfo(${t.code}.dtype).eps`);
  }

  /**
   * Escape hatch: call `fn` (a name under torch., F. or math.) with literal/symbolic args.
   * Prefer the typed methods; this keeps rare ops expressible without growing the builder.
   */
  call(fnName: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}): Tensor {
    if (!/^(torch|F|math)(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(fnName)) {
      throw new KernelBuildError(`call: '${fnName}' is not a torch., F. or math. function`);
    }
    const parts = [...args.map(lit), ...Object.entries(kwargs).map(([k, v]) => `${k}=${lit(v)}`)];
    return this.tensor(`${fnName}(${parts.join(', ')})`);
  }

  /** Apply a custom autograd function (see {@link defineAutogradFunction}). */
  apply<TI extends string, TS extends string, TO extends string>(
    fn: AutogradFunction<TI, TS, TO>,
    tensors: Record<TI, Tensor>,
    scalars: Record<TS, ScalarLike>,
  ): Record<TO, Tensor> {
    const existing = this.functions.get(fn.name);
    if (existing && existing !== (fn as unknown as AutogradFunction)) {
      throw new KernelBuildError(`two different autograd functions are named '${fn.name}'`);
    }
    this.functions.set(fn.name, fn as unknown as AutogradFunction);
    const args = [...fn.tensorInputs.map((k) => tensors[k].code), ...fn.scalarInputs.map((k) => lit(scalars[k]))];
    const names = this.tuple(`${fn.name}.apply(${args.join(', ')})`, fn.outputs.length);
    const shapes = fn.inferShapes?.(tensors, scalars);
    const out = {} as Record<TO, Tensor>;
    fn.outputs.forEach((k, i) => {
      out[k] = new Tensor(this, names[i]!, shapes?.[k]?.shape, shapes?.[k]?.dtype);
    });
    return out;
  }
}

// ---------------------------------------------------------------- autograd functions

/** The pieces of a `torch.autograd.Function` written in TS. */
export interface AutogradFunctionSpec<TI extends string, TS extends string, TO extends string> {
  /** Python class name. */
  name: string;
  tensorInputs: readonly TI[];
  scalarInputs: readonly TS[];
  outputs: readonly TO[];
  /** Outputs that carry no gradient (indices). */
  nonDifferentiable?: readonly TO[];
  forward(f: ProgramBuilder, inputs: Record<TI, Tensor>, scalars: Record<TS, Scalar>): { outputs: Record<TO, Tensor>; save: Record<string, Tensor> };
  /**
   * Per input, how to compute its gradient; each is emitted under
   * `if ctx.needs_input_grad[i]:` so unneeded gradients cost nothing.
   */
  backward: {
    [K in TI]?: (b: ProgramBuilder, saved: Record<string, Tensor>, grads: Record<TO, Tensor>, scalars: Record<TS, Scalar>) => Tensor;
  };
  /** Optional static shapes of the outputs, for shape checks downstream. */
  inferShapes?(tensors: Record<TI, Tensor>, scalars: Record<TS, ScalarLike>): Partial<Record<TO, { shape?: Shape; dtype?: KernelDType }>>;
}

export interface AutogradFunction<TI extends string = string, TS extends string = string, TO extends string = string>
  extends AutogradFunctionSpec<TI, TS, TO> {
  /** The Python class definition. */
  readonly source: string;
}

/** Define a custom autograd function (forward and hand-written backward) in TypeScript. */
export function defineAutogradFunction<TI extends string, TS extends string, TO extends string>(
  spec: AutogradFunctionSpec<TI, TS, TO>,
): AutogradFunction<TI, TS, TO> {
  if (!IDENT.test(spec.name)) throw new KernelBuildError(`autograd function name '${spec.name}' is not an identifier`);
  // forward
  const f = new ProgramBuilder();
  const inputs = Object.fromEntries(spec.tensorInputs.map((k) => [k, f.input(k)])) as Record<TI, Tensor>;
  const scalars = Object.fromEntries(spec.scalarInputs.map((k) => [k, f.scalarInput(k)])) as Record<TS, Scalar>;
  const { outputs, save } = spec.forward(f, inputs, scalars);
  const savedNames = Object.keys(save);
  if (savedNames.length) f.emit(`ctx.save_for_backward(${savedNames.map((k) => save[k]!.code).join(', ')})`);
  for (const s of spec.scalarInputs) f.emit(`ctx.${s} = ${s}`);
  const nd = (spec.nonDifferentiable ?? []).map((k) => outputs[k].code);
  if (nd.length) f.emit(`ctx.mark_non_differentiable(${nd.join(', ')})`);
  f.emit(`return ${spec.outputs.map((k) => outputs[k].code).join(', ')}`);

  // backward
  const b = new ProgramBuilder();
  const gradNames = spec.outputs.map((k) => `grad_${k}`);
  if (savedNames.length) b.emit(`${savedNames.map((k) => `saved_${k}`).join(', ')}, = ctx.saved_tensors`);
  const saved = Object.fromEntries(savedNames.map((k) => [k, new Tensor(b, `saved_${k}`, undefined, save[k]!.dtype)]));
  const grads = Object.fromEntries(spec.outputs.map((k, i) => [k, new Tensor(b, gradNames[i]!)])) as Record<TO, Tensor>;
  const bScalars = Object.fromEntries(spec.scalarInputs.map((k) => [k, b.scalarExpr(`ctx.${k}`)])) as Record<TS, Scalar>;
  const results: string[] = [];
  spec.tensorInputs.forEach((k, i) => {
    const rule = spec.backward[k];
    const name = `d_${k}`;
    results.push(name);
    b.emit(`${name} = None`);
    if (rule) {
      b.block(`if ctx.needs_input_grad[${i}]`, () => {
        const g = rule(b, saved, grads, bScalars);
        b.emit(`${name} = ${g.code}`);
      });
    }
  });
  for (const _ of spec.scalarInputs) results.push('None');
  b.emit(`return ${results.join(', ')}`);

  const nested = new Map([...f.functions, ...b.functions]);
  if (nested.size) throw new KernelBuildError(`${spec.name}: autograd functions cannot nest other autograd functions`);
  const source = [
    `class ${spec.name}(torch.autograd.Function):`,
    '    @staticmethod',
    `    def forward(ctx, ${[...spec.tensorInputs, ...spec.scalarInputs].join(', ')}):`,
    ...f.lines(2),
    '',
    '    @staticmethod',
    `    def backward(ctx, ${gradNames.join(', ')}):`,
    ...b.lines(2),
  ].join('\n');
  return { ...spec, source };
}

// ---------------------------------------------------------------- programs

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

/** A lowered program: Python source plus its declared inputs. Pure data; no Python needed. */
export interface ProgramSpec<O extends string = string> {
  readonly name: string;
  readonly entry: string;
  readonly source: string;
  readonly inputs: readonly InputDecl[];
  readonly outputs: readonly O[];
  readonly compile: boolean;
}

export type ProgramResultValue = Tensor | Scalar | Bundle | PyExpr | number | boolean;

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
  body: (g: ProgramBuilder) => Record<O, ProgramResultValue>,
  options: ProgramOptions = {},
): ProgramSpec<O> {
  if (!IDENT.test(name)) throw new KernelBuildError(`program name '${name}' is not an identifier`);
  const g = new ProgramBuilder();
  let outputs: Record<O, ProgramResultValue> | undefined;
  const grad = options.grad ?? false;
  const gradFlag = grad === 'input' ? g.scalarInput('grad') : undefined;
  const header = gradFlag ? `with torch.set_grad_enabled(${gradFlag.code})` : grad ? 'with torch.enable_grad()' : 'with torch.no_grad()';
  g.block(header, () => {
    outputs = body(g);
    g.emit(`return {${Object.entries(outputs).map(([k, v]) => `${JSON.stringify(k)}: ${lit(v)}`).join(', ')}}`);
  });
  const defs = [...g.functions.values()].map((fn) => fn.source);
  const params = g.inputs.map((i) => i.name);
  const source = [
    ...defs.flatMap((d) => [d, '', '']),
    `def ${name}(${params.join(', ')}):`,
    ...g.lines(1),
    '',
  ].join('\n');
  return { name, entry: name, source, inputs: g.inputs, outputs: Object.keys(outputs!) as O[], compile: options.compile ?? false };
}
