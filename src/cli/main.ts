/**
 * `sparsify MODEL [DATASET] [options]`: train sparse coders from the command line.
 * With no MODEL, trains on the bundled tiny model and text (no network).
 */
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SparsifyError, collectiveFailure } from '../bridge/errors.js';
import { onInterrupt, getRuntime, closeRuntime } from '../bridge/runtime.js';
import { distInit, distSetTimeout, hookWidths, runtimeConfigure } from '../bridge/ops.js';
import { parseFlags } from '../config/errors.js';
import { snakeCase, snakeKeys } from '../util/case.js';
import { SparseCoderConfigSchema } from '../config/sparse-coder.js';
import { RunOptionsSchema, TrainConfigObject, TrainConfigSchema, type RunOptions, type TrainConfig } from '../config/train.js';
import { loadDataset } from '../data/dataset.js';
import { rowsWithin, trainingRows } from '../data/split.js';
import { loadModel } from '../model/language-model.js';
import { bundledDefault } from '../model/bundled.js';
import { Trainer } from '../trainer/trainer.js';
import { modelHookpoints } from '../model/hookpoints.js';
import { addOptions, fieldsOf, readOptions } from './options.js';
import { checkCoderWidths, preflight, type Preflight } from './preflight.js';
import { evalMain } from './eval.js';
import { exploreMain } from './explore.js';
import { createProgress } from './progress.js';
import { cacheMain } from './cache.js';
import { setupMain } from './setup.js';
import { exportMain } from './export.js';
import { uploadMain } from './upload.js';
import { steerMain } from './steer.js';
import { Terminal } from './terminal.js';
import { VERSION } from './version.js';
import { openActivationCache, readCacheIndex } from '../activation-cache/read.js';
import type { TokenDataset } from '../data/dataset.js';
import type { TrainableModel } from '../model/language-model.js';
import { ConfigError } from '../config/errors.js';
import { localPath } from '../util/paths.js';

/** The bundled default: a tiny LM trained on Moby-Dick, and a held-out sample of the book. */
export const BUNDLED = { model: bundledDefault.model, dataset: bundledDefault.dataset, overrides: bundledDefault.settings };

const SAE_FIELDS = fieldsOf(SparseCoderConfigSchema.shape, 'sae');
const TRAIN_FIELDS = fieldsOf(TrainConfigObject.shape, 'train', ['sae']);
const RUN_FIELDS = fieldsOf(RunOptionsSchema.shape, 'run', ['model', 'dataset']);

export function buildCommand(): Command {
  const program = new Command('sparsify')
    .description(
      `Train k-sparse autoencoders and transcoders on a Hugging Face model's activations.\nWith no MODEL, trains on the bundled tiny model and text (offline), with\n${Object.entries(BUNDLED.overrides)
        .map(([key, value]) => `--${snakeCase(key)} ${value}`)
        .join(' ')} unless given.`,
    )
    .argument('[model]', 'model name on the Hub or local path (default: the bundled tiny model); `sparsify eval --help` for evaluating coders, `sparsify explore --help` for looking at their latents')
    .argument('[dataset]', 'dataset name, local path, saved dataset or .bin tokens (default: EleutherAI/SmolLM2-135M-10B, or the bundled text with the bundled model)')
    .allowExcessArguments(false)
    .showHelpAfterError(false)
    .version(VERSION, '-V, --version', 'Print the version')
    .configureOutput({ outputError: (str, write) => write(str) })
    .addHelpText('beforeAll', `Commands (\`sparsify COMMAND --help\` for each):\n${COMMANDS.map(([name, about]) => `  ${name.padEnd(8)} ${about}`).join('\n')}\n`);
  addOptions(program, [...SAE_FIELDS, ...TRAIN_FIELDS, ...RUN_FIELDS]);
  return program;
}

/** The subcommands, each in one line (the main --help lists them). */
const COMMANDS: readonly [string, string][] = [
  ['train', 'train coders on a model\'s activations (the default: `sparsify MODEL ...` is `sparsify train MODEL ...`)'],
  ['eval', 'evaluate coders inside the model: reconstruction, sparsity, CE and KL with them spliced in'],
  ['explore', "cache coders' latents on held-out text and browse them (a local server, or a static site)"],
  ['cache', 'write a model\'s activations to disk once, to train from them without the model'],
  ['export', "write a run's coders as another library's files (SAELens, circuit-tracer)"],
  ['upload', 'publish a run to the Hugging Face Hub in one commit, with a model card'],
  ['steer', "continue a prompt with a latent's decoder row added at its hookpoint, or the latent clamped"],
  ['setup', 'set up (or repair) the Python environment sparsify computes in'],
];

export interface ParsedArgs {
  train: TrainConfig;
  run: RunOptions;
  bundled: boolean;
}

/** Parse argv (without node and script) into validated configs. */
export function parseArgs(argv: string[]): ParsedArgs {
  const program = buildCommand().exitOverride();
  program.parse(argv, { from: 'user' });
  const opts = program.opts<Record<string, unknown>>();
  const [model, dataset] = program.processedArgs as [string | undefined, string | undefined];
  const fromCache = typeof opts.from_cache === 'string';
  if (fromCache && (model !== undefined || dataset !== undefined)) {
    throw new ConfigError('give MODEL [DATASET] or --from_cache, not both: a cache already holds the activations of its model and data');
  }
  const bundled = model === undefined && !fromCache;
  const explicit = new Set(program.options.filter((o) => program.getOptionValueSource(o.attributeName()) === 'cli').map((o) => o.attributeName()));
  const runInput: Record<string, unknown> = { ...readOptions(opts, RUN_FIELDS), ...(fromCache ? {} : { model: model ?? BUNDLED.model }) };
  const trainInput: Record<string, unknown> = { ...readOptions(opts, TRAIN_FIELDS), sae: readOptions(opts, SAE_FIELDS) };
  if (bundled) {
    runInput.dataset = dataset ?? BUNDLED.dataset;
    for (const [key, value] of Object.entries(BUNDLED.overrides)) {
      if (explicit.has(snakeCase(key))) continue;
      if (key in RunOptionsSchema.shape) runInput[key] = value;
      else trainInput[key] = value;
    }
  } else if (dataset) {
    runInput.dataset = dataset;
  }
  const run = parseFlags(RunOptionsSchema, runInput, 'sparsify');
  const train = parseFlags(TrainConfigSchema, trainInput, 'sparsify');
  return { train, run, bundled };
}

interface TrainingSource {
  model: TrainableModel;
  data: TokenDataset;
  evalData?: { dataset: TokenDataset; rows: readonly [number, number] };
  /** What the run records beyond its options (a cache's model and data). */
  record: Partial<RunOptions>;
}

/** The model and its prepared data (the rows the run trains on, and held-out rows for --eval_every). */
async function modelSource(checked: Preflight, run: RunOptions, train: TrainConfig, device: string, log: (m: string) => void): Promise<TrainingSource> {
  log(`Loading model ${run.model} on ${device}`);
  const model = await loadModel(checked.model, {
    // ce/kl, and evaluation's spliced metrics, need the language-model head.
    kind: train.lossFn === 'fvu' && train.evalEvery === 0 ? 'base' : 'causal_lm',
    device,
    ...(run.revision ? { revision: run.revision } : {}),
    ...(run.hfToken ? { token: run.hfToken } : {}),
    loadIn8bit: run.loadIn8bit,
  });
  // A bad --hookpoints, or a k the coders' widths cannot take, fails here, before the data is prepared.
  const hookpoints = await modelHookpoints(model, train);
  const widths = await hookWidths(model.model, hookpoints);
  checkCoderWidths(train, Object.fromEntries(hookpoints.map((h) => [h, widths[h]!.output])));
  log(`Loading dataset ${run.dataset}`);
  // The tokenizer is loaded only if the data is text: a pre-tokenized dataset needs none.
  const tokenizer = { nameOrPath: checked.model, revision: run.revision, token: run.hfToken };
  // The whole prepared dataset; the run trains on its first rows (--max_examples, --holdout).
  const full = await loadDataset(checked.dataset, {
    split: run.split,
    dataArgs: checked.dataArgs,
    tokenizer,
    ctxLen: run.ctxLen,
    textColumn: run.textColumn,
    numProc: run.dataPreprocessingNumProc,
    shuffleSeed: run.shuffleSeed,
    ...(model.vocabSize ? { vocabSize: model.vocabSize } : {}),
  });
  const rows = trainingRows(full.numRows, { maxExamples: run.maxExamples, holdout: run.holdout });
  if (rows === 0) throw new SparsifyError(`${run.dataset}: no rows left to train on (${full.numRows} rows, --holdout ${run.holdout})`);
  const data = { ...full, numRows: rows };
  const heldOut = full.numRows - rows;
  log(`${rows} rows of ${data.ctxLen} tokens${heldOut ? ` (${heldOut} more not trained on${run.holdout ? ', held out for evaluation' : ''})` : ''}`);
  const evalData = train.evalEvery > 0 && heldOut > 0 ? { dataset: full, rows: [rows, Math.min(full.numRows, rows + rowsWithin(train.evalTokens, full.ctxLen, '--eval_tokens'))] as const } : undefined;
  if (train.evalEvery > 0 && !evalData) throw new SparsifyError(`--eval_every needs rows the run does not train on: give --holdout (a share of the rows) or --max_examples below ${full.numRows}`);
  return { model, data, ...(evalData ? { evalData } : {}), record: {} };
}

/** Cached activations standing in for the model and data (its first --max_examples rows). */
async function cacheSource(run: RunOptions, train: TrainConfig, device: string, log: (m: string) => void): Promise<TrainingSource> {
  if (train.lossFn !== 'fvu') throw new ConfigError(`--from_cache trains with loss_fn fvu only (got ${train.lossFn}): ce and kl need the model's forward`);
  if (train.evalEvery > 0) throw new ConfigError('--eval_every needs the model (spliced evaluation); train from the model, or evaluate afterwards with `sparsify eval`');
  const dir = localPath(run.fromCache!, 'from_cache')!;
  // Before the shards' hashes are checked (a second per GB): k against the cached widths.
  checkCoderWidths(train, Object.fromEntries(Object.entries(readCacheIndex(dir).hookpoints).map(([h, w]) => [h, w.output])));
  const t0 = Date.now();
  const cache = await openActivationCache(dir, { device });
  const i = cache.index;
  // The cache's first rows (--max_examples), less the held-out share of them (--holdout).
  const rows = trainingRows(i.rows, { maxExamples: run.maxExamples, holdout: run.holdout });
  if (rows === 0) throw new SparsifyError(`${dir}: no rows left to train on (${i.rows} cached rows, --holdout ${run.holdout})`);
  const unseen = (i.dataset_rows ?? i.rows) - rows;
  log(
    `Training from the activation cache in ${dir} (${i.shards.length} shards checked in ${((Date.now() - t0) / 1000).toFixed(1)} s): ${rows} rows of ${i.ctx_len} tokens of ${i.model} on ${i.dataset}, ${i.dtype}${unseen > 0 ? ` (${unseen} more rows of the data not trained on, for \`sparsify eval\`)` : ''}`,
  );
  // The run is recorded as what it trained on: the cache's model and data, prepared as the
  // cache prepared them, its first `rows` rows (so evaluation finds the rows after them).
  const record: Partial<RunOptions> = {
    model: i.model,
    dataset: i.dataset,
    split: i.split,
    ctxLen: i.ctx_len,
    shuffleSeed: i.shuffle_seed,
    ...(i.text_column !== undefined ? { textColumn: i.text_column } : {}),
    ...(i.data_args !== undefined ? { dataArgs: i.data_args } : {}),
    maxExamples: rows,
  };
  return { model: cache.source, data: { ...cache.dataset, numRows: rows }, record };
}

/** Run the CLI; resolves with the process exit code. `sparsify eval ...` evaluates coders, `sparsify explore ...` shows their latents. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  if (argv[0] === 'eval') return evalMain(argv.slice(1));
  if (argv[0] === 'explore') return exploreMain(argv.slice(1));
  if (argv[0] === 'cache') return cacheMain(argv.slice(1));
  if (argv[0] === 'setup') return setupMain(argv.slice(1));
  if (argv[0] === 'export') return exportMain(argv.slice(1));
  if (argv[0] === 'upload') return uploadMain(argv.slice(1));
  if (argv[0] === 'steer') return steerMain(argv.slice(1));
  if (argv[0] === 'train') return trainMain(argv.slice(1));
  return trainMain(argv);
}

/** `sparsify [train] [MODEL] [DATASET] [options]`. */
async function trainMain(argv: string[]): Promise<number> {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(argv);
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    if (e.code?.startsWith('commander.')) return e.exitCode ?? 2; // commander printed the error
    process.stderr.write(`${e.message.startsWith('sparsify: ') ? '' : 'sparsify: '}${e.message.replace(/(^|: |; )sae\./g, '$1')}\n`);
    return 2;
  }
  const { train, run, bundled } = parsed;
  // Under torchrun (sparsify-launch) only rank 0 talks; other ranks report errors only.
  const launched = process.env.WORLD_SIZE !== undefined && process.env.RANK !== undefined;
  const rankTag = launched ? `[rank ${process.env.RANK}] ` : '';
  const isMain = !launched || process.env.RANK === '0';
  const terminal = new Terminal({ quiet: !isMain });
  const log = (m: string): void => terminal.say(m);
  if (bundled) {
    if (!existsSync(BUNDLED.model)) {
      log(`sparsify: the bundled model is missing (${BUNDLED.model}); run \`npm run make:default-model\` or give a MODEL`);
      return 1;
    }
    log(`No model given: training on the bundled tiny model (${BUNDLED.model}) and text (${BUNDLED.dataset}).`);
  }
  let runDir = resolve(train.saveDir, train.runName ?? 'unnamed');
  try {
    const checked = preflight(train, run, launched ? Number(process.env.RANK) : 0);
    runDir = checked.runDir;
    const rt = await getRuntime();
    // The libraries' own progress bars and warnings only with --verbose: one line per phase otherwise.
    if (isMain && run.verbose) await runtimeConfigure({ progressBars: true }, rt);
    let device = rt.info.cuda ? 'cuda' : 'cpu';
    let distributed: { rank: number; worldSize: number } | undefined;
    if (launched) {
      const d = await distInit(rt);
      distributed = { rank: d.rank, worldSize: d.worldSize };
      device = d.device;
      log(`torch.distributed: ${d.worldSize} ranks, ${d.backend} backend${train.distributeModules ? ', hookpoints distributed across ranks' : ', data parallel'}`);
    }
    const source = run.fromCache ? await cacheSource(run, train, device, log) : await modelSource(checked, run, train, device, log);
    const { model, data, evalData } = source;
    let progress: ReturnType<typeof createProgress> | undefined;
    const trainer = new Trainer(train, data, model, {
      runDir,
      log: (m) => log(m),
      runConfig: snakeKeys({ ...run, ...source.record, ...train }) as Record<string, unknown>,
      onStep: (report) => progress?.update(report),
      overwrite: checked.overwrite,
      ...(evalData ? { evalData } : {}),
      ...(distributed ? { distributed } : {}),
    });
    if (run.resume === 'auto') log(checked.resume ? `--resume auto: ${runDir} holds a complete checkpoint; resuming` : `--resume auto: no complete checkpoint in ${runDir}; starting fresh`);
    if (checked.resume) await trainer.loadState(runDir);
    await trainer.init();
    // From here on a rank that is gone is noticed within dist_timeout, not a week.
    if (launched) await distSetTimeout(run.distTimeout, rt);
    if (isMain) progress = createProgress(trainer.totalSteps, trainer.globalStep, trainer.tokensSeen, terminal);
    let fitting: Promise<unknown> | undefined;
    const removeHandler = onInterrupt(async (signal) => {
      terminal.stopBar();
      // Under torchrun, SIGTERM means the launcher is stopping the run (another rank
      // failed): collectives would not complete, so leave at once; the last checkpoint stands.
      if (launched && signal === 'SIGTERM') return;
      log('Interrupted: saving a checkpoint before exiting (Ctrl-C again to quit at once)');
      trainer.requestStop();
      await fitting?.catch(() => undefined);
      log(`Checkpoint saved to ${runDir} at step ${trainer.globalStep}`);
    });
    fitting = trainer.fit();
    const result = (await fitting) as Awaited<ReturnType<Trainer['fit']>>;
    removeHandler();
    terminal.stopBar();
    log(`Done: ${result.steps} steps. Coders saved to ${runDir}${train.saveBest ? ` (best under ${join(runDir, 'best')})` : ''}`);
    return 0;
  } catch (err) {
    terminal.stopBar();
    const e = err as Error & { pythonTraceback?: string };
    const lostPeer = launched ? collectiveFailure(e) : undefined;
    process.stderr.write(`sparsify: ${rankTag}${lostPeer ?? (e instanceof SparsifyError ? e.message : (e.stack ?? e.message))}\n`);
    if (process.env.SPARSIFY_DEBUG && e.pythonTraceback) process.stderr.write(`${e.pythonTraceback}\n`);
    return 1;
  } finally {
    closeRuntime();
  }
}
