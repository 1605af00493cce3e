/**
 * The latent cache: one pass over the data, kept beside the coders in `explore/` as
 * safetensors (one file per coder, fixed-size per-latent state) and JSON (an index and the
 * tokenizer's decoded vocabulary). Built in a staging folder and moved into place when
 * complete, so an interrupted pass never leaves a cache that loads as whole.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { dataRows, outputEmbeddings, saveTensors, tokenizerDecodeIds, tokenizerTokenBytes, type PyObject, type Tensor } from '../bridge/ops.js';
import { tokenDisplay } from './token-text.js';
import { SparsifyError } from '../bridge/errors.js';
import { numLatentsFor } from '../config/sparse-coder.js';
import { CFG_FILE, WEIGHTS_FILE } from '../coder/files.js';
import type { TokenDataset } from '../data/dataset.js';
import type { EvalCoder } from '../eval/evaluate.js';
import { bind, runPasses, runProgram, type PassHook } from '../kernels/index.js';
import type { TrainableModel } from '../model/language-model.js';
import { sha256Files } from '../util/hash.js';
import { SafetensorsFile } from '../util/safetensors.js';
import { stageFolder } from '../util/staging.js';
import { LAYOUT, WINDOW, decoderNormsProgram, exploreHookProgram, finishProgram, stateProgram } from './programs.js';

export const CacheIndexSchema = z.object({
  version: z.literal(1),
  complete: z.literal(true),
  created: z.string(),
  model: z.string(),
  dataset: z.string(),
  split: z.string().nullable(),
  ctx_len: z.number().int(),
  rows: z.object({ start: z.number().int(), end: z.number().int(), of: z.number().int() }),
  seed: z.number().int(),
  /** The --max_tokens the rows were chosen with (what a rerun with the same settings would pick). */
  max_tokens: z.number().int().nullable(),
  layout: z.object({ top: z.number(), reservoir: z.number(), before: z.number(), after: z.number(), bins: z.number(), intervals: z.number(), perInterval: z.number(), logits: z.number(), neighbours: z.number() }),
  vocab_size: z.number().int(),
  has_logits: z.boolean(),
  coders: z.record(
    z.string(),
    z.object({
      hookpoint: z.string(),
      source: z.string().nullable(),
      hash: z.string(),
      file: z.string(),
      num_latents: z.number().int(),
      d_in: z.number().int(),
      k: z.number().int(),
      /** A cross-layer transcoder's source: the layers its latents write to, this one first (its file holds `decoder_norms` [M, targets]). */
      targets: z.array(z.string()).optional(),
    }),
  ),
});
export type CacheIndex = z.infer<typeof CacheIndexSchema>;

/** sha256 of a coder directory's cfg.json and weights: which coders a cache was built for (a CLT source's cfg.json is its CLT folder's). */
export function coderHash(dir: string): Promise<string> {
  const cfg = existsSync(join(dir, CFG_FILE)) ? join(dir, CFG_FILE) : join(dirname(dir), CFG_FILE);
  return sha256Files(cfg, join(dir, WEIGHTS_FILE));
}

/** The evaluated rows' token ids ([rows, ctx_len] int32), in the cache folder. */
export const TOKENS_FILE = 'tokens.safetensors';

const fileOf = (name: string): string => `coders/${name.replace(/\//g, '__')}.safetensors`;

export interface BuildLatentCacheOptions {
  /** Rows [start, end) of the dataset (default all). */
  rows?: readonly [number, number];
  batchSize?: number;
  /** Seed of the reservoir's random keys (default 0). */
  seed?: number;
  /** Token ids whose activations count as zero (special tokens, --exclude_tokens). */
  excludeTokens?: readonly number[];
  /** The tokenizer, to store each token id's text (else the ids themselves). */
  tokenizer?: PyObject | null;
  onBatch?: (done: number, total: number) => void;
  describe?: { model?: string; dataset?: string; split?: string | null; maxTokens?: number };
  /** Latents per chunk of the logit-effect and neighbour products (default 1024). */
  chunk?: number;
  /** Coders that are a cross-layer transcoder's sources: the layers each writes to and its decoder norm per target ([M, targets]). */
  crossLayer?: Readonly<Record<string, { targets: readonly string[]; decoderNorms: Tensor }>>;
}

/** Each id's text for the explorer: decoded, or its bytes escaped where decoding alone loses them. */
async function readableVocab(tokenizer: PyObject, ids: number[]): Promise<string[]> {
  const [decoded, bytes] = await Promise.all([tokenizerDecodeIds(tokenizer, ids), tokenizerTokenBytes(tokenizer, ids)]);
  return decoded.map((text, i) => tokenDisplay(text, bytes[i] ?? null));
}

/**
 * Build the latent cache of `coders` into `dir`: one pass over the rows, then the logit
 * effects and neighbours; replaces an earlier cache only once complete.
 *
 * @example
 * await buildLatentCache(model, [{ name: 'layers.0', hookpoint: 'layers.0', coder, path }], data, 'checkpoints/run/explore', { rows: [900, 1000] });
 */
export async function buildLatentCache(model: TrainableModel, coders: readonly EvalCoder[], dataset: TokenDataset, dir: string, options: BuildLatentCacheOptions = {}): Promise<CacheIndex> {
  const [start, end] = options.rows ?? [0, dataset.numRows];
  if (!(end > start)) throw new SparsifyError(`no rows to explore: rows ${start}..${end}`);
  const batchSize = options.batchSize ?? 8;
  const seed = options.seed ?? 0;
  const states = new Map<string, PyObject>();
  for (const c of coders) states.set(c.name, (await runProgram(stateProgram(), { params: c.params ?? c.coder.params })).state);
  const total = Math.ceil((end - start) / batchSize);
  for (let b = 0; b < total; b++) {
    const a = start + b * batchSize;
    // Each batch's keys from its own seed: the same cache for the same seed and rows.
    const hooks: PassHook[] = coders.map((c) => ({
      key: c.name,
      module: c.hookpoint,
      program: bind(exploreHookProgram(c.coder.structure), {
        params: c.params ?? c.coder.params,
        k: c.k ?? c.coder.cfg.k,
        state: states.get(c.name)!,
        seed: seed * 1_000_003 + b,
        tokenBase: a * dataset.ctxLen,
        ctxLen: dataset.ctxLen,
      }),
    }));
    await runPasses({ model: model.model, rows: dataset.rows, batches: [[a, Math.min(a + batchSize, end)]], passes: [{ hooks }], device: model.device, excludeTokens: options.excludeTokens ?? [], vocabSize: model.vocabSize });
    options.onBatch?.(b + 1, total);
  }
  const unembed = await outputEmbeddings(model.model);
  const staged = await stageFolder(dir, 'building');
  const staging = staged.path;
  await mkdir(join(staging, 'coders'), { recursive: true });
  const index: CacheIndex = {
    version: 1,
    complete: true,
    created: new Date().toISOString(),
    model: options.describe?.model ?? '',
    dataset: options.describe?.dataset ?? '',
    split: options.describe?.split ?? null,
    ctx_len: dataset.ctxLen,
    rows: { start, end, of: dataset.numRows },
    seed,
    max_tokens: options.describe?.maxTokens ?? null,
    layout: { ...LAYOUT },
    vocab_size: model.vocabSize ?? 0,
    has_logits: unembed !== null,
    coders: {},
  };
  for (const c of coders) {
    const state = states.get(c.name)!;
    await runProgram(finishProgram(unembed !== null), { params: c.params ?? c.coder.params, state, unembed, chunk: options.chunk ?? 1024 });
    const clt = options.crossLayer?.[c.name];
    if (clt) await runProgram(decoderNormsProgram(), { state, norms: clt.decoderNorms });
    await saveTensors(join(staging, fileOf(c.name)), state, { format: 'pt' });
    index.coders[c.name] = {
      hookpoint: c.hookpoint,
      source: c.path ?? null,
      hash: c.path ? await coderHash(c.path) : '',
      file: fileOf(c.name),
      num_latents: numLatentsFor(c.coder.cfg, c.coder.dIn),
      d_in: c.coder.dIn,
      k: c.k ?? c.coder.cfg.k,
      ...(clt ? { targets: [...clt.targets] } : {}),
    };
  }
  // The rows' token ids, once: examples find their window's tokens here.
  await saveTensors(join(staging, TOKENS_FILE), { input_ids: await dataRows(dataset.rows, start, end) });
  const ids = Array.from({ length: index.vocab_size }, (_, i) => i);
  // Partial characters of byte-level tokens as escaped bytes, not U+FFFD (token-text.ts).
  const vocab = options.tokenizer ? await readableVocab(options.tokenizer, ids) : ids.map(String);
  await writeFile(join(staging, 'vocab.json'), JSON.stringify(vocab));
  await writeFile(join(staging, 'index.json'), JSON.stringify(index, null, 2));
  // Into place: the earlier cache moves out only after the new one is whole.
  await staged.commit();
  return index;
}

/** One example of a latent: where it fired and its activations around there. */
export interface LatentExample {
  /** Token index in the evaluated stream (row * ctx_len + position). */
  token: number;
  row: number;
  position: number;
  activation: number;
  /** The window: token ids (-1 outside the row) and this latent's activations. */
  windowTokens: number[];
  windowActs: number[];
}

/** Everything the cache knows of one latent. */
export interface LatentRecord {
  coder: string;
  id: number;
  count: number;
  frequency: number;
  max: number;
  mean: number;
  /** 50 bins over [0, range). */
  histogram: { range: number; counts: number[] };
  top: LatentExample[];
  /** Samples in equal intervals of activation between 0 and the max. */
  intervals: { lo: number; hi: number; examples: LatentExample[] }[];
  logits: { top: { token: number; value: number }[]; bottom: { token: number; value: number }[] } | null;
  neighbours: { id: number; similarity: number }[];
  /** A cross-layer transcoder source's latent: its decoder norm per target layer (index.json's `targets`), else null. */
  decoderNorms: { target: string; norm: number }[] | null;
}

/** The columns of a coder's latent table. */
export interface LatentTable {
  count: Float64Array;
  frequency: Float64Array;
  max: Float32Array;
  mean: Float64Array;
  /** The token each latent fires most on (-1 when it never fired). */
  topToken: Int32Array;
}

/** A cache opened for reading (rows are read from the files on demand). */
export class LatentCache {
  private readonly files = new Map<string, SafetensorsFile>();
  private vocabulary: string[] | undefined;
  private tokensFile: SafetensorsFile | undefined;
  private tokenStream: Int32Array | undefined;

  constructor(
    readonly dir: string,
    readonly index: CacheIndex,
  ) {}

  private file(coder: string): SafetensorsFile {
    const entry = this.index.coders[coder];
    if (!entry) throw new SparsifyError(`the cache has no coder '${coder}' (it has ${Object.keys(this.index.coders).join(', ')})`);
    let f = this.files.get(coder);
    if (!f) {
      f = SafetensorsFile.open(join(this.dir, entry.file));
      this.files.set(coder, f);
    }
    return f;
  }

  /** The decoded text of every token id. */
  vocab(): string[] {
    this.vocabulary ??= JSON.parse(readFileSync(join(this.dir, 'vocab.json'), 'utf8')) as string[];
    return this.vocabulary;
  }

  /** Tokens the coder's statistics are over. */
  tokens(coder: string): number {
    return Number((this.file(coder).read('tokens') as BigInt64Array)[0]);
  }

  table(coder: string): LatentTable {
    const f = this.file(coder);
    const count = Float64Array.from(f.read('count') as BigInt64Array, Number);
    const sum = f.read('act_sum') as Float64Array;
    const tokens = this.tokens(coder);
    const first = f.read('top_first_token') as BigInt64Array;
    const stream = this.allTokens();
    const base = this.index.rows.start * this.index.ctx_len;
    return {
      count,
      frequency: count.map((c) => c / tokens),
      max: f.read('act_max') as Float32Array,
      mean: count.map((c, i) => (c > 0 ? sum[i]! / c : 0)),
      topToken: Int32Array.from(first, (t) => (t < 0n ? -1 : stream[Number(t) - base]!)),
    };
  }

  private tokenFile(): SafetensorsFile {
    this.tokensFile ??= SafetensorsFile.open(join(this.dir, TOKENS_FILE));
    return this.tokensFile;
  }

  /** Token ids of the evaluated row `row` (a dataset row index). */
  rowTokens(row: number): Int32Array {
    return this.tokenFile().row('input_ids', row - this.index.rows.start) as Int32Array;
  }

  /** Every evaluated token id, in order (row by row). */
  allTokens(): Int32Array {
    this.tokenStream ??= this.tokenFile().read('input_ids') as Int32Array;
    return this.tokenStream;
  }

  /**
   * The first `n` distinct token ids among each latent's top examples (the token it fired
   * on), [latents * n], -1 where there are fewer.
   */
  topTokens(coder: string, n: number): Int32Array {
    const f = this.file(coder);
    const tokens = f.read('top_token') as BigInt64Array;
    const slots = this.index.layout.top;
    const stream = this.allTokens();
    const base = this.index.rows.start * this.index.ctx_len;
    const m = tokens.length / slots;
    const out = new Int32Array(m * n).fill(-1);
    for (let l = 0; l < m; l++) {
      let found = 0;
      for (let s = 0; s < slots && found < n; s++) {
        const t = tokens[l * slots + s]!;
        if (t < 0n) break;
        const id = stream[Number(t) - base]!;
        let seen = false;
        for (let j = 0; j < found; j++) if (out[l * n + j] === id) seen = true;
        if (!seen) out[l * n + found++] = id;
      }
    }
    return out;
  }

  private examples(f: SafetensorsFile, prefix: 'top' | 'sample', id: number): LatentExample[] {
    const values = f.row(`${prefix}_value`, id) as Float32Array;
    const tokens = f.row(`${prefix}_token`, id) as BigInt64Array;
    const windows = f.row(`${prefix}_window`, id) as Float32Array;
    const { ctx_len: ctx, layout } = this.index;
    const out: LatentExample[] = [];
    for (let i = 0; i < values.length; i++) {
      if (values[i]! < 0) continue;
      const token = Number(tokens[i]);
      const row = Math.floor(token / ctx);
      const position = token % ctx;
      const ids = this.rowTokens(row);
      const acts = Array.from(windows.subarray(i * WINDOW, (i + 1) * WINDOW));
      out.push({
        token,
        row,
        position,
        activation: acts[layout.before]!,
        windowTokens: acts.map((_, j) => ids[position - layout.before + j] ?? -1),
        windowActs: acts,
      });
    }
    return out;
  }

  latent(coder: string, id: number): LatentRecord {
    const entry = this.index.coders[coder];
    if (!entry) throw new SparsifyError(`the cache has no coder '${coder}'`);
    if (!Number.isInteger(id) || id < 0 || id >= entry.num_latents) throw new RangeError(`latent ${id} is out of range: ${coder} has latents 0..${entry.num_latents - 1}`);
    const f = this.file(coder);
    const count = Number((f.row('count', id) as BigInt64Array)[0]);
    const max = (f.row('act_max', id) as Float32Array)[0]!;
    const sum = (f.row('act_sum', id) as Float64Array)[0]!;
    const tokens = this.tokens(coder);
    // Interval samples: the reservoir (a uniform sample of all firings, highest key first)
    // sorted into equal intervals over [0, max], the first few of each.
    const { intervals: n, perInterval } = this.index.layout;
    const intervals = Array.from({ length: n }, (_, i) => ({ lo: (i * max) / n, hi: ((i + 1) * max) / n, examples: [] as LatentExample[] }));
    // Samples are drawn at random, so the highest intervals of a skewed latent may get
    // few: the top examples (not random) fill in where the reservoir has too few.
    const top = this.examples(f, 'top', id);
    for (const source of [this.examples(f, 'sample', id), top]) {
      for (const e of source) {
        const slot = intervals[Math.min(n - 1, Math.floor((e.activation / max) * n))]!;
        if (slot.examples.length < perInterval && !slot.examples.some((x) => x.token === e.token)) slot.examples.push(e);
      }
    }
    const pairs = (ids: BigInt64Array, values: Float32Array): { token: number; value: number }[] => Array.from(values, (value, i) => ({ token: Number(ids[i]), value }));
    return {
      coder,
      id,
      count,
      frequency: count / tokens,
      max,
      mean: count > 0 ? sum / count : 0,
      histogram: { range: (f.row('hist_range', id) as Float32Array)[0]!, counts: Array.from(f.row('hist', id) as BigInt64Array, Number) },
      top,
      intervals,
      logits: this.index.has_logits
        ? {
            top: pairs(f.row('logit_top_id', id) as BigInt64Array, f.row('logit_top_value', id) as Float32Array),
            bottom: pairs(f.row('logit_bottom_id', id) as BigInt64Array, f.row('logit_bottom_value', id) as Float32Array),
          }
        : null,
      neighbours: Array.from(f.row('neighbour_id', id) as BigInt64Array, (v, i) => ({ id: Number(v), similarity: (f.row('neighbour_similarity', id) as Float32Array)[i]! })),
      decoderNorms: entry.targets ? Array.from(f.row('decoder_norms', id) as Float32Array, (norm, i) => ({ target: entry.targets![i]!, norm })) : null,
    };
  }

  close(): void {
    for (const f of this.files.values()) f.close();
    this.files.clear();
    this.tokensFile?.close();
    this.tokensFile = undefined;
  }
}

/**
 * Open the cache in `dir`. With `verify` (default), each coder whose source directory is
 * still there must have the content the cache was built from.
 */
export async function readLatentCache(dir: string, options: { verify?: boolean } = {}): Promise<LatentCache> {
  const path = join(dir, 'index.json');
  if (!existsSync(path)) throw new SparsifyError(`${dir}: no latent cache here (index.json missing); build one with \`sparsify explore\``);
  const parsed = CacheIndexSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new SparsifyError(`${path}: not a complete latent cache (${parsed.error.issues[0]?.message}); build it again with \`sparsify explore\``);
  const index = parsed.data;
  if (options.verify ?? true) {
    for (const [name, c] of Object.entries(index.coders)) {
      if (c.source && existsSync(join(c.source, WEIGHTS_FILE)) && (await coderHash(c.source)) !== c.hash) {
        throw new SparsifyError(`${dir} was built for other coders: ${name} (${c.source}) has changed since; build the cache again with \`sparsify explore\``);
      }
    }
  }
  return new LatentCache(dir, index);
}
