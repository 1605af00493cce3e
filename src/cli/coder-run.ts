/**
 * What `sparsify eval` and `sparsify explore` share: from CODERS [MODEL] [DATASET], the coder
 * directories (local, or downloaded from the Hub), the run they come from, and - loaded only
 * when needed - the model, its special tokens, the data and the rows the run did not train on.
 */
import { join } from 'node:path';
import { tokenizerSpecialIds, type PyObject, type Tensor } from '../bridge/ops.js';
import { SparsifyError } from '../bridge/errors.js';
import { DATA_DEFAULTS } from '../config/data.js';
import type { RunRecord } from '../config/run-record.js';
import { parseDataArgs } from '../config/train.js';
import { findCoderDirs, findRunConfig, noCodersMessage, type CoderDirEntry } from '../coder/discover.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { CrossLayerTranscoder, crossLayerLayers, isCrossLayerDir } from '../coder/cross-layer.js';
import { readCoderConfig } from '../coder/files.js';
import { loadDataset, type TokenDataset } from '../data/dataset.js';
import { rowsWithin, trainingRows } from '../data/split.js';
import { checkCodersFit, hookpointOf, type EvalCoder } from '../eval/evaluate.js';
import { downloadCoderFiles } from '../hub/download.js';
import { loadModel, loadTokenizer, type LanguageModel } from '../model/language-model.js';
import { fnmatcher } from '../util/fnmatch.js';
import { localPath } from '../util/paths.js';

/** Both commands' positional arguments: CODERS [MODEL] [DATASET]. */
export const CODER_RUN_ARGUMENTS = [
  ['<coders>', 'a run directory (checkpoints/NAME), a coder directory, or a Hub repo of coders'],
  ['[model]', "model name on the Hub or local path (default: the run's)"],
  ['[dataset]', "dataset (default: the run's)"],
] as const;

/** The options both commands take to find coders, model and data. */
export interface CoderRunOptions {
  coders: string;
  model?: string | undefined;
  dataset?: string | undefined;
  hookpoints: string[];
  maxTokens: number;
  ctxLen?: number | undefined;
  split?: string | undefined;
  excludeTokens?: number[] | undefined;
  hfToken?: string | undefined;
  revision?: string | undefined;
}

/** The coders found and what their run says; nothing loaded yet. */
export interface CoderRun {
  /** Where the coder directories are (a local folder, or the downloaded copy). */
  root: string;
  /** The coders are a local folder (else they came from the Hub). */
  local: boolean;
  /** The folder is one cross-layer transcoder (its entries are its source layers' folders). */
  crossLayer: boolean;
  entries: CoderDirEntry[];
  /** The run's record (config.json), when the coders come with one. */
  run: RunRecord | undefined;
  /** The run directory holding that config.json. */
  runDir: string | null;
  modelName: string;
  datasetName: string;
  split: string;
  ctxLen: number;
}

/** Find the coders (downloading a Hub repo) and what their run says. */
export async function findCoderRun(opts: CoderRunOptions): Promise<CoderRun> {
  const local = localPath(opts.coders, 'coders');
  const root = local ?? (await downloadCoderFiles(opts.coders, { subdirPattern: '*', ...(opts.hfToken ? { token: opts.hfToken } : {}) }));
  const crossLayer = isCrossLayerDir(root);
  const patterns = opts.hookpoints.map((p) => fnmatcher(p));
  // A CLT's entries are its source layers' folders (explore caches each source's latents).
  const all = crossLayer ? crossLayerLayers(root).map((layer) => ({ name: layer, path: join(root, layer) })) : findCoderDirs(root);
  const entries = all.filter((e) => patterns.length === 0 || patterns.some((m) => m(e.name) || m(hookpointOf(e.name))));
  if (entries.length === 0) throw new SparsifyError(noCodersMessage(opts.coders, opts.hookpoints));
  const clts = crossLayer ? [] : entries.filter((e) => isCrossLayerDir(e.path));
  if (clts.length) throw new SparsifyError(`${opts.coders} holds ${clts.length === 1 ? 'a cross-layer transcoder' : `${clts.length} cross-layer transcoders`} (${clts.map((e) => e.name).join(', ')}, a sweep's): give ${clts.length === 1 ? 'its' : 'one\'s'} folder, as ${join(opts.coders, clts[0]!.name)}`);
  // Each coder's cfg.json is read now, before any model loads: a broken one costs a second.
  if (!crossLayer) for (const e of entries) readCoderConfig(e.path);
  const found = local ? findRunConfig(root) : undefined;
  const run = found?.config;
  const modelName = opts.model ?? run?.model;
  const datasetName = opts.dataset ?? run?.dataset;
  if (!modelName) throw new SparsifyError(`give MODEL: ${opts.coders} has no run config.json naming one`);
  if (!datasetName) throw new SparsifyError(`give DATASET: ${opts.coders} has no run config.json naming one`);
  return {
    root,
    local: local !== undefined,
    crossLayer,
    entries,
    run,
    runDir: found?.dir ?? null,
    modelName,
    datasetName,
    split: opts.split ?? run?.split ?? DATA_DEFAULTS.split,
    ctxLen: opts.ctxLen ?? run?.ctxLen ?? DATA_DEFAULTS.ctxLen,
  };
}

/** The model, data and coders loaded, and the rows to use. */
export interface LoadedCoderRun {
  model: LanguageModel;
  tokenizer: PyObject | null;
  /** The model's special tokens (BOS/EOS/pad and the tokenizer's). */
  specialTokenIds: number[];
  /** Token ids to leave out besides the special ones (the option, else the run's). */
  excludeTokens: number[];
  dataset: TokenDataset;
  rows: [number, number];
  /** The rows are the run's own data after the rows it trained on. */
  heldOut: boolean;
  coders: EvalCoder[];
  /** The cross-layer transcoder, when the folder is one (then `coders` holds its sources for explore, else nothing). */
  clt: CrossLayerTranscoder | null;
  /** For explore of a CLT: each source's target layers and decoder norm per target, by the coder's name. */
  crossLayer?: Record<string, { targets: string[]; decoderNorms: Tensor }>;
}

/**
 * Load the model, its tokenizer and the data, and pick the rows the run did not train on:
 * after its last one on its own data, from the first on other data; at most `maxTokens`.
 */
export async function loadCoderRun(found: CoderRun, opts: CoderRunOptions, say: (m: string) => void, verb: 'evaluate' | 'explore'): Promise<LoadedCoderRun> {
  const { run, modelName, datasetName, split, ctxLen } = found;
  say(`Loading model ${modelName}`);
  const modelPath = localPath(modelName, 'model') ?? modelName;
  const model = await loadModel(modelPath, { kind: 'causal_lm', ...(opts.revision ? { revision: opts.revision } : {}), ...(opts.hfToken ? { token: opts.hfToken } : {}) });
  const coders: EvalCoder[] = [];
  const clt = found.crossLayer ? await CrossLayerTranscoder.load(found.root, { device: model.device }) : null;
  if (!clt) for (const e of found.entries) coders.push({ name: e.name, hookpoint: hookpointOf(e.name), coder: await SparseCoder.loadFromDisk(e.path, { device: model.device }), path: e.path });
  let crossLayer: LoadedCoderRun['crossLayer'];
  if (clt && verb === 'explore') {
    // Each source as a per-layer coder over its layer's input, its decoder the sum over its targets (logit effects, neighbours).
    crossLayer = {};
    for (const e of found.entries) {
      const i = clt.layers.indexOf(e.name);
      const view = await clt.sourceView(i);
      coders.push({ name: e.name, hookpoint: e.name, coder: view.coder, path: e.path });
      crossLayer[e.name] = { targets: clt.layers.slice(i), decoderNorms: view.decoderNorms };
    }
  }
  // Before the data is prepared: the coders fit this model (eval and explore alike).
  await checkCodersFit(model, coders);
  let specials = [...(model.specialTokenIds ?? [])];
  let tokenizer: PyObject | null = null;
  try {
    tokenizer = await loadTokenizer(modelPath, { ...(opts.revision ? { revision: opts.revision } : {}), ...(opts.hfToken ? { token: opts.hfToken } : {}) });
    specials = [...new Set([...specials, ...(await tokenizerSpecialIds(tokenizer))])];
  } catch {
    // no tokenizer files: the model config's BOS/EOS/pad ids
  }
  say(`Loading dataset ${datasetName}`);
  const dataset = await loadDataset(localPath(datasetName, 'dataset') ?? datasetName, {
    split,
    dataArgs: parseDataArgs(run?.dataArgs ?? DATA_DEFAULTS.dataArgs),
    tokenizer: { nameOrPath: modelPath, revision: opts.revision, token: opts.hfToken },
    ctxLen,
    textColumn: run?.textColumn ?? DATA_DEFAULTS.textColumn,
    shuffleSeed: run?.shuffleSeed ?? DATA_DEFAULTS.shuffleSeed,
    ...(model.vocabSize ? { vocabSize: model.vocabSize } : {}),
  });
  const heldOut = run !== undefined && datasetName === run.dataset && split === run.split && ctxLen === run.ctxLen;
  const start = heldOut ? trainingRows(dataset.numRows, { maxExamples: run.maxExamples, holdout: run.holdout }) : 0;
  if (start >= dataset.numRows) {
    throw new SparsifyError(`the run trained on every row of ${datasetName} (split ${split}); ${verb} on another --split or DATASET, or train with --holdout`);
  }
  const end = Math.min(dataset.numRows, start + rowsWithin(opts.maxTokens, dataset.ctxLen));
  return {
    model,
    tokenizer,
    specialTokenIds: specials,
    excludeTokens: opts.excludeTokens ?? run?.excludeTokens ?? [],
    dataset,
    rows: [start, end],
    heldOut,
    coders,
    clt,
    ...(crossLayer ? { crossLayer } : {}),
  };
}
