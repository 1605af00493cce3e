/**
 * Writing an activation cache: one pass of the model over the rows, the hookpoints' outputs
 * (and inputs, for transcoders) copied into shard buffers by hook programs, each shard saved
 * atomically with its rows' token ids, hashed, and recorded in index.json. The index says
 * `complete: true` only after the last shard; an interrupted cache resumes after its last
 * whole shard when asked again with the same settings.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, statfsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { writeFileAtomic } from '../util/files.js';
import { sha256Files } from '../util/hash.js';
import { join } from 'node:path';
import { bundleGet, dataRows, saveTensors, type Tensor } from '../bridge/ops.js';
import { SparsifyError } from '../bridge/errors.js';
import type { TokenDataset } from '../data/dataset.js';
import { bind, runPasses, runProgram, type PassHook } from '../kernels/index.js';
import type { TrainableModel } from '../model/language-model.js';
import { captureProgram, shardBuffersProgram } from './programs.js';
import { ActivationCacheIndexSchema, bytesPerRow, cacheSettingsKey, type ActivationCacheIndex, type CacheDType, type Shard } from './schema.js';

export const INDEX_FILE = 'index.json';

/** The bytes of a safetensors header for these tensors (8-byte length, JSON padded to 8). */
function headerBytes(entries: readonly { name: string; shape: number[]; dtype: string }[]): number {
  let offset = 0;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  for (const e of entries) {
    const bytes = e.shape.reduce((a, b) => a * b, 1) * (e.dtype === 'I32' || e.dtype === 'F32' ? 4 : 2);
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = JSON.stringify(header).length;
  return 8 + json + ((8 - (json % 8)) % 8);
}

const ST_DTYPE: Record<CacheDType, string> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };

/** Each shard's tensors, as written. */
function shardEntries(plan: Pick<ActivationCacheIndex, 'ctx_len' | 'dtype' | 'hookpoints'>, rows: number): { name: string; shape: number[]; dtype: string }[] {
  const out = [{ name: 'input_ids', shape: [rows, plan.ctx_len], dtype: 'I32' }];
  for (const [h, w] of Object.entries(plan.hookpoints)) {
    out.push({ name: `out/${h}`, shape: [rows * plan.ctx_len, w.output], dtype: ST_DTYPE[plan.dtype] });
    if (w.input !== null) out.push({ name: `in/${h}`, shape: [rows * plan.ctx_len, w.input], dtype: ST_DTYPE[plan.dtype] });
  }
  // As safetensors lays them out: by dtype, in the reverse of its enum order, then by name.
  const rank: Record<string, number> = { F16: 0, BF16: 1, I32: 2, F32: 3 };
  return out.sort((a, b) => rank[b.dtype]! - rank[a.dtype]! || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The size of a shard of `rows` rows, header included (what the writer will produce). */
export function shardBytes(plan: Pick<ActivationCacheIndex, 'ctx_len' | 'dtype' | 'hookpoints'>, rows: number): number {
  return headerBytes(shardEntries(plan, rows)) + rows * bytesPerRow(plan);
}

export interface CachePlan {
  model: string;
  dataset: string;
  split: string;
  ctxLen: number;
  shuffleSeed: number;
  /** How the text was prepared, for a run from the cache to record (and eval to redo). */
  textColumn?: string;
  dataArgs?: string;
  /** Rows of the prepared dataset (the cache holds its first `rows`), and the share left out at its end. */
  datasetRows?: number;
  holdout?: number;
  rows: number;
  dtype: CacheDType;
  transcode: boolean;
  hookpoints: Record<string, { output: number; input: number | null }>;
  rowsPerShard: number;
}

/** Shard size to aim for when none is given: about 512 MB. */
export function defaultRowsPerShard(plan: Pick<ActivationCacheIndex, 'ctx_len' | 'dtype' | 'hookpoints'>): number {
  return Math.max(1, Math.floor((512 * 2 ** 20) / bytesPerRow(plan)));
}

/** The index a plan writes (no shards yet). */
export function planIndex(plan: CachePlan): ActivationCacheIndex {
  return {
    format: 'sparsify-activations',
    version: 1,
    complete: false,
    created: new Date().toISOString(),
    model: plan.model,
    dataset: plan.dataset,
    split: plan.split,
    ctx_len: plan.ctxLen,
    shuffle_seed: plan.shuffleSeed,
    ...(plan.textColumn !== undefined ? { text_column: plan.textColumn } : {}),
    ...(plan.dataArgs !== undefined ? { data_args: plan.dataArgs } : {}),
    ...(plan.datasetRows !== undefined ? { dataset_rows: plan.datasetRows } : {}),
    ...(plan.holdout !== undefined ? { holdout: plan.holdout } : {}),
    rows: plan.rows,
    tokens: plan.rows * plan.ctxLen,
    dtype: plan.dtype,
    transcode: plan.transcode,
    hookpoints: plan.hookpoints,
    rows_per_shard: plan.rowsPerShard,
    shards: [],
  };
}

/** Bytes the whole cache takes on disk (shards and index). */
export function estimateBytes(index: ActivationCacheIndex): number {
  const full = Math.floor(index.rows / index.rows_per_shard);
  const rest = index.rows - full * index.rows_per_shard;
  return full * shardBytes(index, index.rows_per_shard) + (rest > 0 ? shardBytes(index, rest) : 0);
}

async function writeIndex(dir: string, index: ActivationCacheIndex): Promise<void> {
  await writeFileAtomic(join(dir, INDEX_FILE), `${JSON.stringify(index, null, 2)}\n`);
}

const shardFile = (i: number): string => `shard-${String(i).padStart(5, '0')}.safetensors`;

export interface WriteCacheOptions {
  batchSize?: number;
  /** Progress: shards done of all, bytes written. */
  onShard?: (done: number, total: number, bytes: number) => void;
  log?: (message: string) => void;
}

/**
 * Write (or finish) the activation cache of `plan` into `dir`. A `dir` holding a cache of
 * other settings, or a complete one, is refused (remove it or choose another folder).
 *
 * @example
 * await writeActivationCache(model, data, 'cache/pythia-l6', plan);
 */
export async function writeActivationCache(model: TrainableModel, dataset: TokenDataset, dir: string, plan: CachePlan, options: WriteCacheOptions = {}): Promise<ActivationCacheIndex> {
  const log = options.log ?? (() => undefined);
  let index = planIndex(plan);
  mkdirSync(dir, { recursive: true });
  const indexPath = join(dir, INDEX_FILE);
  if (existsSync(indexPath)) {
    const parsed = ActivationCacheIndexSchema.safeParse(JSON.parse(readFileSync(indexPath, 'utf8')));
    if (!parsed.success) throw new SparsifyError(`${dir} holds an ${INDEX_FILE} that is not an activation cache's; choose another --out`);
    if (parsed.data.complete) throw new SparsifyError(`${dir} already holds a complete activation cache; train from it with --from_cache ${dir}, or choose another --out`);
    if (cacheSettingsKey(parsed.data) !== cacheSettingsKey(index)) throw new SparsifyError(`${dir} holds an unfinished cache of other settings (model, data, hookpoints, dtype or shard size); remove it or choose another --out`);
    // Resume after the last whole shard (one that is there with its recorded hash).
    const kept: Shard[] = [];
    for (const s of parsed.data.shards) {
      const path = join(dir, s.file);
      if (!existsSync(path) || statSync(path).size !== s.bytes || (await sha256Files(path)) !== s.sha256) break;
      kept.push(s);
    }
    index = { ...parsed.data, shards: kept };
    log(`Resuming the cache in ${dir} after ${kept.length} whole shard(s)`);
  }
  // Refuse before writing anything when the disk cannot take the rest.
  const total = estimateBytes(index);
  const done = index.shards.reduce((n, s) => n + s.bytes, 0);
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  if (total - done > free) {
    throw new SparsifyError(`the cache needs ${gb(total - done)} more but ${dir} has ${gb(free)} free; free some space, lower --max_tokens, or use --dtype bfloat16`);
  }
  await writeIndex(dir, index);
  // Temporary files of a save that was killed half-way.
  for (const name of readdirSync(dir)) if (/\.tmp-\d+$/.test(name)) await rm(join(dir, name), { force: true });
  const names = Object.entries(plan.hookpoints).flatMap(([h, w]) => [{ name: `out/${h}`, width: w.output }, ...(w.input !== null ? [{ name: `in/${h}`, width: w.input }] : [])]);
  const buffersSpec = shardBuffersProgram(names, plan.dtype);
  const batchSize = options.batchSize ?? 8;
  const shards = Math.ceil(plan.rows / plan.rowsPerShard);
  for (let s = index.shards.length; s < shards; s++) {
    const start = s * plan.rowsPerShard;
    const end = Math.min(plan.rows, start + plan.rowsPerShard);
    const { buffers } = await runProgram(buffersSpec, { tokens: (end - start) * plan.ctxLen, device: 'cpu' }, model.model.runtime);
    for (let a = start; a < end; a += batchSize) {
      const hooks: PassHook[] = Object.entries(plan.hookpoints).map(([h, w]) => ({ key: h, module: h, program: bind(captureProgram(h, w.input !== null), { buffers, offset: (a - start) * plan.ctxLen }) }));
      await runPasses({ model: model.model, rows: dataset.rows, batches: [[a, Math.min(a + batchSize, end)]], passes: [{ hooks }], device: model.device, vocabSize: model.vocabSize });
    }
    const tensors: Record<string, Tensor> = { input_ids: await dataRows(dataset.rows, start, end) };
    for (const n of names) tensors[n.name] = await bundleGet(buffers, n.name);
    const file = shardFile(s);
    await saveTensors(join(dir, file), tensors, { format: 'pt' });
    const path = join(dir, file);
    index.shards.push({ file, start, end, bytes: statSync(path).size, sha256: await sha256Files(path) });
    await writeIndex(dir, index);
    options.onShard?.(s + 1, shards, index.shards.reduce((n, x) => n + x.bytes, 0));
  }
  index.complete = true;
  await writeIndex(dir, index);
  // Shards of an earlier attempt beyond what this one wrote would only confuse a reader.
  for (const name of readdirSync(dir)) {
    if (/^shard-\d+\.safetensors$/.test(name) && !index.shards.some((s) => s.file === name)) await rm(join(dir, name), { force: true });
  }
  return index;
}

export function gb(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

