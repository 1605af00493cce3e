/**
 * `sparsify explore CODERS [MODEL] [DATASET]`: build the latent cache of a run's coders (once;
 * kept in CODERS/explore and reused while the coders and settings are the same), then serve
 * the explorer on localhost, or write it as a static site with --out.
 */
import { Command } from 'commander';
import { execa } from 'execa';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { closeRuntime, getRuntime } from '../bridge/runtime.js';
import { runtimeConfigure } from '../bridge/ops.js';
import { ConfigError, parseFlags } from '../config/errors.js';
import { ExploreOptionsSchema, type ExploreOptions } from '../config/explore.js';
import { buildLatentCache, coderHash, readLatentCache, type CacheIndex } from '../explore/latent-cache.js';
import { checkExportTarget, exportExplorer, serveExplorer } from '../explore/server.js';
import { LiveExplorer, crossLayerLiveCoders, type LiveModels } from '../explore/live.js';
import { CrossLayerTranscoder } from '../coder/cross-layer.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { hookpointOf } from '../eval/evaluate.js';
import { CausalLM } from '../model/causal-lm.js';
import { localPath } from '../util/paths.js';
import { CODER_RUN_ARGUMENTS, findCoderRun, loadCoderRun, type CoderRun } from './coder-run.js';
import { rowsWithin } from '../data/split.js';
import { fieldsOf, readOptions } from './options.js';
import { argumentErrorExit, runErrorExit, subcommand } from './subcommand.js';
import { Terminal, type Bar } from './terminal.js';

const FIELDS = fieldsOf(ExploreOptionsSchema.shape, 'explore', ['coders', 'model', 'dataset']);

export function buildExploreCommand(): Command {
  return subcommand(
    'explore',
    "Look at what the latents do: cache each latent's statistics, top and sampled examples, logit effects and neighbours in one pass over rows the run did not train on, then serve a local dashboard (or --out a static site).",
    CODER_RUN_ARGUMENTS,
    FIELDS,
  );
}

/** Parse `sparsify explore` arguments (after `explore`). */
export function parseExploreArgs(argv: string[]): ExploreOptions {
  const command = buildExploreCommand().exitOverride();
  command.parse(argv, { from: 'user' });
  const [coders, model, dataset] = command.processedArgs as [string, string | undefined, string | undefined];
  return parseFlags(ExploreOptionsSchema, { ...readOptions(command.opts<Record<string, unknown>>(), FIELDS), coders, model, dataset }, 'sparsify explore');
}

/** Why the cache in `dir` cannot serve these coders and settings, or null when it can. */
async function staleReason(index: CacheIndex, found: CoderRun, opts: ExploreOptions): Promise<string | null> {
  const want = found.entries.map((e) => e.name).sort();
  const have = Object.keys(index.coders).sort();
  if (want.join('\n') !== have.join('\n')) return `it holds coders ${have.join(', ')}, not ${want.join(', ')}`;
  for (const e of found.entries) {
    if (index.coders[e.name]!.hash !== (await coderHash(e.path))) return `it was built for other coders: ${e.name} has changed since`;
  }
  const settings: [string, unknown, unknown][] = [
    ['model', index.model, found.modelName],
    ['dataset', index.dataset, found.datasetName],
    ['split', index.split, found.split],
    ['ctx_len', index.ctx_len, found.ctxLen],
    ['seed', index.seed, opts.seed],
    ['max_tokens', index.max_tokens, opts.maxTokens],
  ];
  for (const [name, had, now] of settings) if (had !== now) return `it was built with ${name} ${String(had)}, not ${String(now)}`;
  return null;
}

/** Open a URL in the desktop's browser; quietly nothing where there is none. */
function openBrowser(url: string): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  execa(cmd, args, { detached: true, stdio: 'ignore', reject: false })
    .then((r) => r.exitCode)
    .catch(() => undefined);
}

/** Run `sparsify explore`; resolves with the exit code (when serving: once stopped with Ctrl-C). */
export async function exploreMain(argv: string[]): Promise<number> {
  let opts: ExploreOptions;
  try {
    opts = parseExploreArgs(argv);
  } catch (err) {
    return argumentErrorExit(err, 'explore');
  }
  const terminal = new Terminal();
  const say = (m: string): void => terminal.say(m);
  try {
    const found = await findCoderRun(opts);
    rowsWithin(opts.maxTokens, found.ctxLen); // a budget of less than a row is said before anything loads
    const cacheDir = resolve(opts.cacheDir ?? (found.local ? join(found.root, 'explore') : 'explore'));
    // Where things go is checked before anything loads.
    if (existsSync(cacheDir) && !statSync(cacheDir).isDirectory()) throw new ConfigError(`--cache_dir ${cacheDir} is a file; give a folder`);
    if (opts.out) checkExportTarget(resolve(opts.out));
    let build = opts.rebuild;
    if (!build && existsSync(join(cacheDir, 'index.json'))) {
      let reason: string | null;
      try {
        reason = await staleReason((await readLatentCache(cacheDir, { verify: false })).index, found, opts);
      } catch (err) {
        reason = (err as Error).message;
      }
      if (reason) say(`The latent cache in ${cacheDir} does not fit: ${reason}. Building it again.`);
      else say(`Using the latent cache in ${cacheDir} (--rebuild to build it again)`);
      build = reason !== null;
    } else build = true;

    if (build) {
      const rt = await getRuntime();
      if (opts.verbose) await runtimeConfigure({ progressBars: true }, rt);
      const loaded = await loadCoderRun(found, opts, say, 'explore');
      const [start, end] = loaded.rows;
      say(`Caching ${loaded.coders.length} coder(s) on rows ${start}..${end} of ${loaded.dataset.numRows}${loaded.heldOut ? ' (not trained on)' : ''} into ${cacheDir}`);
      let bar: Bar | undefined;
      await buildLatentCache(loaded.model, loaded.coders, loaded.dataset, cacheDir, {
        rows: loaded.rows,
        batchSize: opts.batchSize,
        seed: opts.seed,
        excludeTokens: [...new Set([...loaded.specialTokenIds, ...loaded.excludeTokens])],
        tokenizer: loaded.tokenizer,
        describe: { model: found.modelName, dataset: found.datasetName, split: found.split, maxTokens: opts.maxTokens },
        ...(loaded.crossLayer ? { crossLayer: loaded.crossLayer } : {}),
        onBatch: (done, total) => {
          bar ??= terminal.bar({ format: 'explore |{bar}| {value}/{total} batches | ETA {eta_formatted}', total, line: (value, all) => `explore batch ${value}/${all}` });
          bar.update(done);
        },
      });
      terminal.stopBar();
      closeRuntime(); // serving needs no Python
    }

    const runDir = found.runDir;
    if (opts.out) {
      const { index, files } = await exportExplorer(cacheDir, opts.out, { runDir });
      say(`Wrote the explorer (${files} files) to ${resolve(opts.out)}`);
      process.stdout.write(`${index}\n`);
      return 0;
    }
    // Typed prompts and steering load the model on the first request (serving starts at once).
    const live = new LiveExplorer(
      async () => {
        say(`Loading model ${found.modelName} for typed prompts`);
        const device = (await getRuntime()).info.cuda ? 'cuda' : 'cpu';
        const hub = { ...(opts.revision ? { revision: opts.revision } : {}), ...(opts.hfToken ? { token: opts.hfToken } : {}) };
        const lm = await CausalLM.load(localPath(found.modelName, 'model') ?? found.modelName, { device, ...hub });
        const coders: LiveModels['coders'] = found.crossLayer ? await crossLayerLiveCoders(await CrossLayerTranscoder.load(found.root, { device }), found.entries.map((e) => e.name)) : new Map();
        if (!found.crossLayer) for (const e of found.entries) coders.set(e.name, { hookpoint: hookpointOf(e.name), coder: await SparseCoder.loadFromDisk(e.path, { device }) });
        return { lm, coders };
      },
      { coderNames: found.entries.map((e) => e.name) },
    );
    const server = await serveExplorer(cacheDir, { port: opts.port, host: opts.host, runDir, live });
    process.stdout.write(`${server.url}\n`);
    say(`Serving the explorer at ${server.url} (Ctrl-C to stop)`);
    if (opts.open) openBrowser(server.url);
    await new Promise<void>((done) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void server.close().then(done);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return 0;
  } catch (err) {
    terminal.stopBar();
    return runErrorExit(err, 'explore');
  } finally {
    closeRuntime();
  }
}
