/**
 * Reading and writing safetensors files in Node. Writing: from JS arrays (the format: an 8-byte little-endian header
 * length, a JSON header of names, dtypes, shapes and byte offsets, then the raw data), for
 * results made in TypeScript. Atomic: a temp file next to the target, fsynced, renamed.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { writeFileAtomic } from './files.js';

type Array64 = Float64Array | Float32Array | BigInt64Array | Int32Array;

const DTYPES = new Map<new (...a: never[]) => Array64, string>([
  [Float64Array, 'F64'],
  [Float32Array, 'F32'],
  [BigInt64Array, 'I64'],
  [Int32Array, 'I32'],
]);

/** Write 1-D tensors (`name -> data`) to `path`, with string metadata. */
export async function writeSafetensors(path: string, tensors: Record<string, Array64>, metadata: Record<string, string> = {}): Promise<void> {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const chunks: Buffer[] = [];
  for (const [name, data] of Object.entries(tensors)) {
    const dtype = DTYPES.get(data.constructor as new (...a: never[]) => Array64);
    if (!dtype) throw new TypeError(`writeSafetensors: ${name} has an unsupported array type`);
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    header[name] = { dtype, shape: [data.length], data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
    chunks.push(bytes);
  }
  let json = Buffer.from(JSON.stringify(header));
  // The data starts 8-byte aligned, as the reference writer pads it.
  const pad = (8 - (json.length % 8)) % 8;
  json = Buffer.concat([json, Buffer.from(' '.repeat(pad))]);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(json.length));
  await writeFileAtomic(path, Buffer.concat([size, json, ...chunks]));
}

type Typed = Float64Array | Float32Array | BigInt64Array | Int32Array | Uint8Array;
const READERS: Record<string, { size: number; make: (b: ArrayBuffer) => Typed }> = {
  F64: { size: 8, make: (b) => new Float64Array(b) },
  F32: { size: 4, make: (b) => new Float32Array(b) },
  I64: { size: 8, make: (b) => new BigInt64Array(b) },
  I32: { size: 4, make: (b) => new Int32Array(b) },
  U8: { size: 1, make: (b) => new Uint8Array(b) },
  BOOL: { size: 1, make: (b) => new Uint8Array(b) },
};

/** One tensor's place in a safetensors file. */
export interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/**
 * A safetensors file read in place: the header at open, then whole tensors or single rows
 * (the first dim) by file offset, so a large file is never read whole.
 */
export class SafetensorsFile {
  private constructor(
    private readonly fd: number,
    private readonly dataStart: number,
    readonly tensors: Record<string, TensorEntry>,
    readonly metadata: Record<string, string>,
  ) {}

  static open(path: string): SafetensorsFile {
    const fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(8);
      readSync(fd, head, 0, 8, 0);
      const n = Number(head.readBigUInt64LE(0));
      const json = Buffer.alloc(n);
      readSync(fd, json, 0, n, 8);
      const header = JSON.parse(json.toString('utf8')) as Record<string, TensorEntry | Record<string, string>>;
      const { __metadata__: metadata, ...tensors } = header;
      return new SafetensorsFile(fd, 8 + n, tensors as Record<string, TensorEntry>, (metadata ?? {}) as Record<string, string>);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  private entry(name: string): TensorEntry & { reader: (typeof READERS)[string] } {
    const e = this.tensors[name];
    if (!e) throw new RangeError(`no tensor '${name}' in this file`);
    const reader = READERS[e.dtype];
    if (!reader) throw new TypeError(`tensor '${name}' has dtype ${e.dtype}, which this reader does not read`);
    return { ...e, reader };
  }

  private readBytes(start: number, length: number, make: (b: ArrayBuffer) => Typed): Typed {
    const buf = Buffer.alloc(length);
    readSync(this.fd, buf, 0, length, this.dataStart + start);
    return make(buf.buffer.slice(buf.byteOffset, buf.byteOffset + length) as ArrayBuffer);
  }

  /** The whole tensor, flat. */
  read(name: string): Typed {
    const e = this.entry(name);
    return this.readBytes(e.data_offsets[0], e.data_offsets[1] - e.data_offsets[0], e.reader.make);
  }

  /** Row `index` of the first dim, flat. */
  row(name: string, index: number): Typed {
    const e = this.entry(name);
    const rowElements = e.shape.slice(1).reduce((a, b) => a * b, 1);
    const rowBytes = rowElements * e.reader.size;
    if (index < 0 || index >= (e.shape[0] ?? 0)) throw new RangeError(`row ${index} out of range for '${name}' of ${e.shape[0]} rows`);
    return this.readBytes(e.data_offsets[0] + index * rowBytes, rowBytes, e.reader.make);
  }

  close(): void {
    closeSync(this.fd);
  }
}
