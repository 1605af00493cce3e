/**
 * `sparsify cache [MODEL] [DATASET] --out DIR`: run the model once over the data (prepared as
 * for training) and write the hookpoints' activations to disk, for training without the model
 * (`sparsify --from_cache DIR`). Says the size before it starts and refuses when the disk lacks
 * the space; an interrupted cache resumes when the same command runs again.
 */
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { resolve } from 'node:path';
import { closeRuntime, getRuntime, onInterrupt } from '../bridge/runtime.js';
import { hookWidths, runtimeConfigure } from '../bridge/ops.js';
import { snakeCase } from '../util/case.js';
import { CacheOptionsSchema, type CacheOptions } from '../config/cache.js';
import { ConfigError, parseWith } from '../config/errors.js';
import { parseDataArgs } from '../config/train.js';
import { defaultRowsPerShard, estimateBytes, gb, planIndex, writeActivationCache, type CachePlan } from '../activation-cache/write.js';
import { loadDataset } from '../data/dataset.js';
import { bundledDefault } from '../model/bundled.js';
import { loadModel } from '../model/language-model.js';
import { modelHookpoints } from '../model/hookpoints.js';
import { localPath } from '../util/paths.js';
import { fieldsOf, readOptions } from './options.js';
import { argumentErrorExit, runErrorExit, subcommand } from './subcommand.js';

const FIELDS = fieldsOf(CacheOptionsSchema.shape, 'cache', ['model', 'dataset']);

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
  // The bundled default: its model, its text, and its context length unless given.
  const bundled = model === undefined ? { model: bundledDefault.model, dataset: dataset ?? bundledDefault.dataset, ...(command.getOptionValueSource('ctx_len') === 'cli' ? {} : { ctxLen: bundledDefault.settings.ctxLen }) } : { model, dataset };
  return parseWith(CacheOptionsSchema, { ...opts, ...bundled }, 'sparsify cache', snakeCase);
}

/** Run `sparsify cache`; resolves with the exit code. */
export async function cacheMain(argv: string[]): Promise<number> {
  let opts: CacheOptions;
  try {
    opts = parseCacheArgs(argv);
  } catch (err) {
    return argumentErrorExit(err, 'cache');
  }
  const say = (m: string): void => void process.stderr.write(`${m}\n`);
  try {
    if (!opts.dataset) throw new ConfigError('give DATASET: only the bundled model comes with its own text');
    const out = resolve(opts.out);
    const modelPath = localPath(opts.model!, 'model') ?? opts.model!;
    const datasetPath = localPath(opts.dataset, 'dataset') ?? opts.dataset;
    const dataArgs = parseDataArgs(opts.dataArgs);
    const rt = await getRuntime();
    await runtimeConfigure({ progressBars: Boolean(process.stderr.isTTY) }, rt);
    const device = rt.info.cuda ? 'cuda' : 'cpu';
    say(`Loading model ${opts.model} on ${device}`);
    const model = await loadModel(modelPath, { kind: 'base', device, ...(opts.revision ? { revision: opts.revision } : {}), ...(opts.hfToken ? { token: opts.hfToken } : {}) });
    const hookpoints = await modelHookpoints(model, opts);
    const widths = await hookWidths(model.model, hookpoints);
    for (const h of hookpoints) {
      if (opts.transcode && widths[h]!.input === null) throw new ConfigError(`hookpoint '${h}' has no tensor input to cache for a transcoder; choose modules that take one`);
    }
    say(`Loading dataset ${opts.dataset}`);
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
    const rows = Math.min(data.numRows, opts.maxTokens ? Math.ceil(opts.maxTokens / data.ctxLen) : Infinity);
    const layout = { ctx_len: data.ctxLen, dtype: opts.dtype, hookpoints: Object.fromEntries(hookpoints.map((h) => [h, { output: widths[h]!.output, input: opts.transcode ? widths[h]!.input : null }])) };
    const plan: CachePlan = {
      model: opts.model!,
      dataset: opts.dataset,
      split: opts.split,
      ctxLen: data.ctxLen,
      shuffleSeed: opts.shuffleSeed,
      rows,
      dtype: opts.dtype,
      transcode: opts.transcode,
      hookpoints: layout.hookpoints,
      rowsPerShard: Math.max(1, Math.floor((defaultRowsPerShard(layout) * opts.shardMb) / 512)),
    };
    const total = estimateBytes(planIndex(plan));
    const shards = Math.ceil(rows / plan.rowsPerShard);
    say(`Caching ${hookpoints.length} hookpoint(s) (${hookpoints.join(', ')}) over ${rows} rows (${rows * data.ctxLen} tokens), ${opts.dtype}${opts.transcode ? ', inputs too' : ''}: ${gb(total)} in ${shards} shard(s) into ${out}`);
    const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'cache |{bar}| {value}/{total} shards | {written} | ETA {eta_formatted}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
    bar?.start(shards, 0, { written: '' });
    const started = Date.now();
    const remove = onInterrupt(() => {
      bar?.stop();
      say(`\nInterrupted: the shards written so far are kept; run the same command again to finish the cache in ${out}`);
    });
    const index = await writeActivationCache(model, data, out, plan, {
      batchSize: opts.batchSize,
      log: say,
      onShard: (done, all, bytes) => {
        if (bar) bar.update(done, { written: gb(bytes) });
        else say(`shard ${done}/${all} (${gb(bytes)})`);
      },
    });
    remove();
    bar?.stop();
    const secs = (Date.now() - started) / 1000;
    const bytes = index.shards.reduce((n, s) => n + s.bytes, 0);
    say(`Done: ${index.tokens} tokens, ${gb(bytes)} in ${secs.toFixed(1)} s (${Math.round(index.tokens / secs)} tokens/s, ${(bytes / 2 ** 20 / secs).toFixed(1)} MB/s). Train from it with: sparsify --from_cache ${out}`);
    process.stdout.write(`${out}\n`);
    return 0;
  } catch (err) {
    return runErrorExit(err, 'cache');
  } finally {
    closeRuntime();
  }
}
