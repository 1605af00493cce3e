/**
 * Opening an activation cache for training: the index checked (complete, its shards there,
 * whole and matching their sha256), then a runtime reader that stands in for the model and the
 * data rows (`TrainableModel` with `cached`, and a `TokenDataset`).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { activationCacheOpen } from '../bridge/ops.js';
import { SparsifyError } from '../bridge/errors.js';
import type { TokenDataset } from '../data/dataset.js';
import type { TrainableModel } from '../model/language-model.js';
import { ActivationCacheIndexSchema, type ActivationCacheIndex } from './schema.js';
import { INDEX_FILE } from './write.js';
import { sha256Files } from '../util/hash.js';

/** A cache opened for training. */
export interface OpenedActivationCache {
  dir: string;
  index: ActivationCacheIndex;
  /** Stands in for the model: hookpoints and widths from the index, activations from the shards. */
  source: TrainableModel;
  /** The cached rows (token ids), for the trainer's batches. */
  dataset: TokenDataset;
}

/** Read and check `dir`'s index: complete, every shard present with its recorded size. */
export function readCacheIndex(dir: string): ActivationCacheIndex {
  const path = join(dir, INDEX_FILE);
  if (!existsSync(path)) throw new SparsifyError(`${dir} is not an activation cache (no ${INDEX_FILE}); write one with \`sparsify cache\``);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new SparsifyError(`${path} is not valid JSON; write the cache again with \`sparsify cache\``);
  }
  const parsed = ActivationCacheIndexSchema.safeParse(json);
  if (!parsed.success) throw new SparsifyError(`${dir} is not an activation cache (${INDEX_FILE}: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`);
  const index = parsed.data;
  const shards = Math.ceil(index.rows / index.rows_per_shard);
  if (!index.complete) throw new SparsifyError(`${dir} is an unfinished activation cache (${index.shards.length} of ${shards} shards written); run the same \`sparsify cache\` command again to finish it`);
  if (index.shards.length !== shards || index.shards.some((s, i) => s.start !== i * index.rows_per_shard || s.end !== Math.min(index.rows, s.start + index.rows_per_shard))) {
    throw new SparsifyError(`${dir}: its index lists shards that do not cover its ${index.rows} rows; write the cache again`);
  }
  for (const s of index.shards) {
    const file = join(dir, s.file);
    if (!existsSync(file)) throw new SparsifyError(`${dir}: shard ${s.file} is missing; write the cache again`);
    const size = statSync(file).size;
    if (size !== s.bytes) throw new SparsifyError(`${dir}: shard ${s.file} is ${size < s.bytes ? 'truncated' : 'longer than recorded'} (${size} of ${s.bytes} bytes); write the cache again`);
  }
  return index;
}

/**
 * Open the cache in `dir` for training on `device`. With `verify` (default), every shard's
 * sha256 is checked against the index first (about a second per GB).
 *
 * @example
 * const cache = await openActivationCache('cache/pythia-l6', { device: 'cuda' });
 * const trainer = new Trainer({ sae: { k: 32 } }, cache.dataset, cache.source);
 */
export async function openActivationCache(dir: string, options: { device?: string; verify?: boolean } = {}): Promise<OpenedActivationCache> {
  const root = resolve(dir);
  const index = readCacheIndex(root);
  if (options.verify ?? true) {
    // A few at a time: hashing is disk-bound.
    const queue = [...index.shards];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let s = queue.shift(); s; s = queue.shift()) {
          if ((await sha256Files(join(root, s.file))) !== s.sha256) throw new SparsifyError(`${dir}: shard ${s.file} does not match the cache's index (sha256 differs); write the cache again`);
        }
      }),
    );
  }
  const device = options.device ?? 'cpu';
  const reader = await activationCacheOpen(
    index.shards.map((s) => ({ path: join(root, s.file), start: s.start, end: s.end })),
    index.ctx_len,
    device,
  );
  return {
    dir: root,
    index,
    source: { model: reader, device, cached: { hookpoints: Object.keys(index.hookpoints), widths: index.hookpoints } },
    dataset: { rows: reader, numRows: index.rows, ctxLen: index.ctx_len },
  };
}
