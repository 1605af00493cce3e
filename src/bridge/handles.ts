/** JS stand-ins for Python objects held by the runtime. */
import type { Runtime } from './runtime.js';
import type { WireHandle } from './wire.js';

/** Tensor element types the runtime knows. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'uint8' | 'bool';

/** A Python object kept in the runtime; it is freed when this object is garbage-collected or {@link PyObject.free}d. */
export class PyObject {
  /** @internal */
  constructor(
    readonly runtime: Runtime,
    readonly id: number,
    readonly kind: string,
  ) {
    runtime.track(this, id);
  }

  toJSON(): { $h: number } {
    return { $h: this.id };
  }

  /** Release the Python object now (it is freed with the next bridge call). */
  free(): void {
    this.runtime.untrack(this);
    this.runtime.release(this.id);
  }
}

type TypedArrayFor = {
  float32: Float32Array;
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int16: Int16Array;
  uint8: Uint8Array;
  bool: Uint8Array;
};

/** Array data read back from a tensor: float16/bfloat16 arrive widened to float32. */
export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Uint8Array;

const ARRAY_TYPES: Record<keyof TypedArrayFor | 'float16', new (b: ArrayBuffer) => TensorData> = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  uint8: Uint8Array,
  bool: Uint8Array,
  float16: Float32Array,
};

/**
 * A torch tensor living in the Python runtime.
 *
 * @example
 * const t = await Tensor.fromArray(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * console.log(t.shape, await t.toArray());
 */
export class Tensor extends PyObject {
  /** @internal */
  constructor(
    runtime: Runtime,
    id: number,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly device: string,
  ) {
    super(runtime, id, 'tensor');
  }

  /** The number of elements. */
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Copy the data to JS (one bridge call). */
  async toArray(): Promise<TensorData> {
    const reply = await this.runtime.call<{ data: string; dtype: keyof typeof ARRAY_TYPES }>('tensor.to_bytes', {
      tensor: this,
    });
    const bytes = Buffer.from(reply.data, 'base64');
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    return new ARRAY_TYPES[reply.dtype](buffer);
  }

  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    const data = await this.toArray();
    if (data.length !== 1) throw new RangeError(`item() needs a one-element tensor, this one has shape [${this.shape.join(', ')}]`);
    return Number(data[0]);
  }

  /** The gradient accumulated on this (leaf) tensor, or null. */
  async grad(): Promise<Tensor | null> {
    return this.runtime.call<Tensor | null>('tensor.grad', { tensor: this });
  }

  /** Make a tensor from JS data (one bridge call). */
  static async fromArray(
    data: ArrayLike<number> | TensorData,
    shape: readonly number[],
    options: { dtype?: DType; device?: string; requiresGrad?: boolean; runtime?: Runtime } = {},
  ): Promise<Tensor> {
    const dtype = options.dtype ?? 'float32';
    const runtime = options.runtime ?? (await (await import('./runtime.js')).getRuntime());
    const expected = shape.reduce((a, b) => a * b, 1);
    if (data.length !== expected) {
      throw new RangeError(`data has ${data.length} elements but shape [${shape.join(', ')}] needs ${expected}`);
    }
    const array = toTypedArray(data, dtype);
    return runtime.call<Tensor>('tensor.from_bytes', {
      data: Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64'),
      shape,
      dtype: dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype,
      device: options.device ?? 'cpu',
      requires_grad: options.requiresGrad ?? false,
    });
  }
}

function toTypedArray(data: ArrayLike<number> | TensorData, dtype: DType): TensorData {
  switch (dtype) {
    case 'float64':
      return Float64Array.from(data as ArrayLike<number>);
    case 'int64':
      return data instanceof BigInt64Array ? data : BigInt64Array.from(Array.from(data as ArrayLike<number>, (v) => BigInt(Math.trunc(v))));
    case 'int32':
      return Int32Array.from(data as ArrayLike<number>);
    case 'int16':
      return Int16Array.from(data as ArrayLike<number>);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(data as ArrayLike<number>);
    default:
      return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
  }
}

/** @internal Turn a wire handle into the matching JS object. */
export function adoptHandle(runtime: Runtime, h: WireHandle): PyObject {
  if (h.kind === 'tensor') return new Tensor(runtime, h.$h, h.shape ?? [], (h.dtype ?? 'float32') as DType, h.device ?? 'cpu');
  return new PyObject(runtime, h.$h, h.kind);
}
