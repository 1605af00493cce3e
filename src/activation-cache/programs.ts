/**
 * The activation cache's programs: a shard's buffers, and one hook program per hookpoint that
 * copies the batch's activations into them (converting to the cache's dtype) at its offset.
 */
import { HOOK_INPUTS, In, cachedProgram, defineProgram, type SymTensor } from '../kernels/index.js';
import type { CacheDType } from './schema.js';

/** Zeroed buffers of `tokens` rows for each (name, width), on `device` (the CPU: shards are written from there). */
export function shardBuffersProgram(entries: readonly { name: string; width: number }[], dtype: CacheDType) {
  const key = entries.map((e) => `${e.name}:${e.width}`).join(',');
  return cachedProgram(`cache_buffers:${dtype}:${key}`, () =>
    defineProgram('cache_shard_buffers', { tokens: In.scalar(), device: In.object<string>() }, (g, { tokens, device }) => {
      const out: Record<string, SymTensor> = {};
      for (const e of entries) out[e.name] = g.zeros([tokens, e.width], { dtype, device }).named('buffer');
      return { buffers: g.bundle(out).named('buffers') };
    }),
  );
}

/** Copy a hookpoint's outputs (and inputs, for a transcoder cache) into the shard's buffers at `offset`. */
export function captureProgram(hookpoint: string, withInputs: boolean) {
  return cachedProgram(`cache_capture:${withInputs}:${hookpoint}`, () =>
    defineProgram('cache_capture', { ...HOOK_INPUTS, buffers: In.bundle(), offset: In.scalar() }, (_g, { inputs, outputs, buffers, offset }) => {
      const y = outputs.flatten(0, 1).named('y');
      buffers.get(`out/${hookpoint}`).narrow(0, offset, y.size(0)).copy_(y);
      if (withInputs) {
        const x = inputs.flatten(0, 1).named('x');
        buffers.get(`in/${hookpoint}`).narrow(0, offset, x.size(0)).copy_(x);
      }
      return { metrics: {} };
    }),
  );
}
