/**
 * Writing a safetensors file from JS arrays (the format: an 8-byte little-endian header
 * length, a JSON header of names, dtypes, shapes and byte offsets, then the raw data), for
 * results made in TypeScript. Atomic: a temp file next to the target, fsynced, renamed.
 */
import { open, rename, rm } from 'node:fs/promises';

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
  const tmp = `${path}.tmp-${process.pid}`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(Buffer.concat([size, json, ...chunks]));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
