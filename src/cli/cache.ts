/**
 * `sparsify cache [MODEL] [DATASET] --out DIR`: run the model once over the data (prepared as
 * for training) and write the hookpoints' activations to disk, for training without the model
 * (`sparsify --from_cache DIR`). `--out` is checked and locked before anything loads; the size
 * is said before writing, and a disk that lacks the space is refused; an interrupted cache
 * resumes when the same command runs again.
 */
import { Command } from 'commander';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { closeRuntime, getRuntime, onInterrupt } from '../bridge/runtime.js';
import { hookWidths, runtimeConfigure } from '../bridge/ops.js';
import { SparsifyError } from '../bridge/errors.js';
import { CacheOptionsSchema, type CacheOptions } from '../config/cache.js';
import { ConfigError, parseFlags } from '../config/errors.js';
import { parseDataArgs } from '../config/train.js';
import { INDEX_FILE, defaultRowsPerShard, estimateBytes, gb, planIndex, writeActivationCache, type CachePlan } from '../activation-cache/write.js';
import { ActivationCacheIndexSchema } from '../activation-cache/schema.js';
import { loadDataset } from '../data/dataset.js';
import { rowsWithin, trainingRows } from '../data/split.js';
import { bundledDefault } from '../model/bundled.js';
import { loadModel } from '../model/language-model.js';
import { modelHookpoints } from '../model/hookpoints.js';
import { checkSaveDir } from '../trainer/run-dir.js';
import { LOCK_FILE, lockFolder } from '../util/lock.js';
import { localPath } from '../util/paths.js';
import { fieldsOf, readOptions } from './options.js';
import { argumentErrorExit, runErrorExit, subcommand } from './subcommand.js';
import { Terminal } from './terminal.js';

const FIELDS = fieldsOf(CacheOptionsSchema.shape, 'cache', ['model', 'dataset']);

/** What the bundled default caches with unless given: its context length and held-out tenth (as `npx sparsify` trains). */
const BUNDLED_CACHE = { ctxLen: bundledDefault.settings.ctxLen, holdout: bundledDefault.settings.holdout } as const;

export function buildCacheCommand(): Command {
  return subcommand(
    'cache',
    "Write a model's activations at the hookpoints to disk once (shards of safetensors and an index), to train coders from them without the model: `sparsify --from_cache DIR`. With no MODEL, the bundled tiny model and text.",
    [
      ['[model]', 'model name on the Hub or local path (default: the bundled tiny model)'],
      ['[dataset]', 'dataset (default: the bundled text with the bundled model)'],
    ],
    FIELDS,
  );
}

export function parseCacheArgs(argv: string[]): CacheOptions {
  const command = buildCacheCommand().exitOverride();
  command.parse(argv, { from: 'user' });
  const [model, dataset] = command.processedArgs as [string | undefined, string | undefined];
  const opts = readOptions(command.opts<Record<string, unknown>>(), FIELDS);
  // The bundled default: its model, its text, and its settings unless given.
  const given = (key: string): boolean => command.getOptionValueSource(key) === 'cli';
  const bundled =
    model === undefined
      ? { model: bundledDefault.model, dataset: dataset ?? bundledDefault.dataset, ...Object.fromEntries(Object.entries(BUNDLED_CACHE).filter(([k]) => !given(k === 'ctxLen' ? 'ctx_len' : k))) }
      : { model, dataset };
  return parseFlags(CacheOptionsSchema, { ...opts, ...bundled }, 'sparsify cache');
}

/**
 * Fail before anything loads unless `out` can take this cache: a folder (or a path to make
 * one) that is writable and holds nothing but an unfinished activation cache, if anything.
 */
function checkOut(out: string, flag: string): void {
  if (existsSync(out) && !statSync(out).isDirectory()) throw new ConfigError(`${flag} ${out} is a file; give a folder (a new one, or an unfinished cache to resume)`);
  checkSaveDir(existsSync(out) ? out : dirname(out));
  if (!existsSync(out)) return;
  const indexPath = join(out, INDEX_FILE);
  if (!existsSync(indexPath)) {
    const other = readdirSync(out).filter((n) => n !== LOCK_FILE);
    if (other.length) throw new ConfigError(`${flag} ${out} holds other files (${other.slice(0, 3).join(', ')}${other.length > 3 ? ', ...' : ''}); give a new or empty folder, or an unfinished cache to resume`);
    return;
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch {
    throw new SparsifyError(`${out} holds an ${INDEX_FILE} that is not an activation cache's; choose another ${flag}`);
  }
  const parsed = ActivationCacheIndexSchema.safeParse(json);
  if (!parsed.success) throw new SparsifyError(`${out} holds an ${INDEX_FILE} that is not an activation cache's; choose another ${flag}`);
  if (parsed.data.complete) throw new SparsifyError(`${out} already holds a complete activation cache; train from it with --from_cache ${out}, or choose another ${flag}`);
}

/** Run `sparsify cache`; resolves with the exit code. */
export async function cacheMain(argv: string[]): Promise<number> {
  let opts: CacheOptions;
  try {
    opts = parseCacheArgs(argv);
  } catch (err) {
    return argumentErrorExit(err, 'cache');
  }
  const terminal = new Terminal();
  const say = (m: string): void => terminal.say(m);
  let lock: { release(): void } | undefined;
  try {
    if (!opts.dataset) throw new ConfigError('give DATASET: only the bundled model comes with its own text');
    const out = resolve(opts.out);
    // Everything knowable before a model loads: the paths, the folder, its lock.
    const modelPath = localPath(opts.model!, 'model') ?? opts.model!;
    const datasetPath = localPath(opts.dataset, 'dataset') ?? opts.dataset;
    const dataArgs = parseDataArgs(opts.dataArgs);
    checkOut(out, '--out');
    if (opts.maxTokens) rowsWithin(opts.maxTokens, opts.ctxLen);
    lock = await lockFolder(out, 'another `sparsify cache` is writing it; wait for it to finish, or choose another --out', (m) => new SparsifyError(m));
    const rt = await getRuntime();
    if (opts.verbose) await runtimeConfigure({ progressBars: true }, rt);
    const device = rt.info.cuda ? 'cuda' : 'cpu';
    say(`Loading model ${opts.model} on ${device}`);
    const model = await loadModel(modelPath, { kind: 'base', device, ...(opts.revision ? { revision: opts.revision } : {}), ...(opts.hfToken ? { token: opts.hfToken } : {}) });
    const hookpoints = await modelHookpoints(model, opts);
    const widths = await hookWidths(model.model, hookpoints);
    for (const h of hookpoints) {
      if (opts.transcode && widths[h]!.input === null) throw new ConfigError(`hookpoint '${h}' has no tensor input to cache for a transcoder; choose modules that take one`);
    }
    say(`Preparing dataset ${opts.dataset}`);
    const data = await loadDataset(datasetPath, {
      split: opts.split,
      dataArgs,
      tokenizer: { nameOrPath: modelPath, revision: opts.revision, token: opts.hfToken },
      ctxLen: opts.ctxLen,
      textColumn: opts.textColumn,
      numProc: opts.dataPreprocessingNumProc,
      shuffleSeed: opts.shuffleSeed,
      ...(opts.maxExamples ? { maxExamples: opts.maxExamples } : {}),
      ...(model.vocabSize ? { vocabSize: model.vocabSize } : {}),
    });
    // The first rows of the prepared data, less the held-out share, at most --max_tokens.
    const kept = trainingRows(data.numRows, { holdout: opts.holdout });
    const rows = Math.min(kept, opts.maxTokens ? rowsWithin(opts.maxTokens, data.ctxLen) : Infinity);
    if (rows === 0) throw new SparsifyError(`${opts.dataset}: no rows left to cache (${data.numRows} rows, --holdout ${opts.holdout})`);
    const layout = { ctx_len: data.ctxLen, dtype: opts.dtype, hookpoints: Object.fromEntries(hookpoints.map((h) => [h, { output: widths[h]!.output, input: opts.transcode ? widths[h]!.input : null }])) };
    const plan: CachePlan = {
      model: opts.model!,
      dataset: opts.dataset,
      split: opts.split,
      ctxLen: data.ctxLen,
      shuffleSeed: opts.shuffleSeed,
      textColumn: opts.textColumn,
      dataArgs: opts.dataArgs,
      datasetRows: data.numRows,
      holdout: opts.holdout,
      rows,
      dtype: opts.dtype,
      transcode: opts.transcode,
      hookpoints: layout.hookpoints,
      rowsPerShard: Math.max(1, Math.floor((defaultRowsPerShard(layout) * opts.shardMb) / 512)),
    };
    const total = estimateBytes(planIndex(plan));
    const shards = Math.ceil(rows / plan.rowsPerShard);
    const left = data.numRows - rows;
    say(
      `Caching ${hookpoints.length} hookpoint(s) (${hookpoints.join(', ')}) over ${rows} rows (${rows * data.ctxLen} tokens), ${opts.dtype}${opts.transcode ? ', inputs too' : ''}: ${gb(total)} in ${shards} shard(s) into ${out}${left ? ` (the ${left} later rows are left out${opts.holdout ? ', held out for evaluation' : ''})` : ''}`,
    );
    const bar = terminal.bar({
      format: 'cache |{bar}| {value}/{total} shards | {written} | ETA {eta_formatted}',
      total: shards,
      fields: { written: '' },
      line: (done, all, f) => `shard ${done}/${all} (${f.written})`,
    });
    const started = Date.now();
    const remove = onInterrupt(() => {
      terminal.stopBar();
      say(`Interrupted: the shards written so far are kept; run the same command again to finish the cache in ${out}`);
    });
    // Shards kept from an earlier, interrupted run: the first one this run writes tells.
    let resumedShards: number | undefined;
    const index = await writeActivationCache(model, data, out, plan, {
      batchSize: opts.batchSize,
      log: say,
      onShard: (done, _all, bytes) => {
        resumedShards ??= done - 1;
        bar.update(done, { written: gb(bytes) });
      },
    });
    remove();
    terminal.stopBar();
    const secs = (Date.now() - started) / 1000;
    const kept0 = Math.min(rows, (resumedShards ?? shards) * plan.rowsPerShard);
    const writtenTokens = (rows - kept0) * data.ctxLen;
    const writtenBytes = index.shards.slice(resumedShards ?? shards).reduce((n, s) => n + s.bytes, 0);
    const bytes = index.shards.reduce((n, s) => n + s.bytes, 0);
    const resumed = (resumedShards ?? shards) > 0 ? `; resumed after ${resumedShards ?? shards} shard(s), this run wrote ${writtenTokens} tokens` : '';
    say(
      `Done: ${index.tokens} tokens, ${gb(bytes)} in ${secs.toFixed(1)} s (${Math.round(writtenTokens / secs)} tokens/s, ${(writtenBytes / 2 ** 20 / secs).toFixed(1)} MB/s${resumed}). Train from it with: sparsify --from_cache ${out}`,
    );
    process.stdout.write(`${out}\n`);
    return 0;
  } catch (err) {
    terminal.stopBar();
    return runErrorExit(err, 'cache');
  } finally {
    lock?.release();
    closeRuntime();
  }
}
