/**
 * What the CLI checks before it starts Python or loads a model, so that a mistake costs a
 * second, not a model load: local paths exist, --data_args parse, the save directory is
 * writable, the run directory is free (or holds the checkpoint --resume asks for), the coders
 * to finetune from read, and -k fits the coders' widths where a local model's config tells them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { findCoderDirs } from '../coder/discover.js';
import { readCoderConfig } from '../coder/files.js';
import { isCrossLayerDir, notCrossLayerFinetune } from '../coder/cross-layer.js';
import { ConfigError } from '../config/errors.js';
import { coderShapeProblem, describeProblem, numLatentsFor } from '../config/sparse-coder.js';
import { parseDataArgs, variantsOf, type RunOptions, type TrainConfig } from '../config/train.js';
import { checkResumable, hasCompleteCheckpoint } from '../trainer/run-state.js';
import { checkNotLocked, checkSaveDir, holdsRun, RunDirError } from '../trainer/run-dir.js';
import { expandHome, localPath } from '../util/paths.js';

export interface Preflight {
  runDir: string;
  /** The model and dataset, local paths resolved (home expanded), Hub names as given. */
  model: string;
  dataset: string;
  dataArgs: Record<string, string | number | boolean>;
  /** Whether the run resumes (`--resume auto`: when the run directory holds a complete checkpoint). */
  resume: boolean;
  /** Move an earlier run in the directory aside (`--overwrite`, or a restarted job's attempt that never saved). */
  overwrite: boolean;
}

/** Run the checks; `rank` is this process's rank under torchrun (0 otherwise). */
export function preflight(train: TrainConfig, run: RunOptions, rank: number): Preflight {
  // From a cache there is no model or dataset to find (the cache's index names them).
  const model = run.fromCache ? '' : (localPath(run.model, 'model') ?? run.model);
  const dataset = run.fromCache ? '' : (localPath(run.dataset, 'dataset') ?? run.dataset);
  if (run.fromCache) localPath(run.fromCache, 'from_cache');
  const finetune = train.finetune ? localPath(train.finetune, 'finetune') : undefined;
  // The coders to start from are read now (a broken cfg.json costs a second, not a model load).
  if (finetune && train.crossLayer) {
    // One CLT folder per configuration (the run's own folder without a sweep).
    for (const v of variantsOf(train)) {
      const why = notCrossLayerFinetune(join(finetune, v.name));
      if (why) throw new ConfigError(why);
    }
  } else if (finetune) {
    if (isCrossLayerDir(finetune)) throw new ConfigError(`finetune: ${finetune} is a cross-layer transcoder; finetune it with --transcode --cross_layer`);
    for (const e of findCoderDirs(finetune)) readCoderConfig(e.path);
  }
  // The layers' width, where a local model's config.json says it: -k is checked against it now.
  const width = model && !train.hookpoints.length ? localHiddenSize(model) : undefined;
  if (width !== undefined) checkCoderWidths(train, { layers: width });
  const dataArgs = parseDataArgs(run.dataArgs);
  const saveDir = expandHome(train.saveDir);
  checkSaveDir(saveDir);
  const runDir = resolve(saveDir, train.runName ?? 'unnamed');
  const resume = run.resume === 'auto' ? hasCompleteCheckpoint(runDir) : run.resume;
  // A job torchrun restarted before its first complete checkpoint starts again from scratch.
  const overwrite = run.overwrite || (run.resume === 'auto' && !resume && Number(process.env.TORCHELASTIC_RESTART_COUNT ?? 0) > 0);
  if (rank === 0) {
    checkNotLocked(runDir);
    if (resume) checkResumable(runDir, train, { distributeModules: train.distributeModules, rank });
    else if (holdsRun(runDir) && !overwrite) {
      throw new RunDirError(`${runDir} already holds a run${run.resume === 'auto' ? ' but no complete checkpoint' : ''}; pass --resume to continue it, or --overwrite to move it aside and start a new one (or choose another --run_name)`);
    }
  }
  return { runDir, model, dataset, dataArgs, resume, overwrite };
}

/** A local model folder's hidden size from its config.json (the width of its layers' outputs), if it says one. */
function localHiddenSize(model: string): number | undefined {
  const file = join(model, 'config.json');
  if (!existsSync(file)) return undefined;
  try {
    const cfg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const size = cfg.hidden_size ?? cfg.n_embd ?? cfg.d_model;
    return typeof size === 'number' && Number.isInteger(size) && size > 0 ? size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Fail unless every configuration's k fits the coders it makes on hookpoints of these widths
 * (the activation's own rule: k at most the latents, groupmax's k dividing them): checked as
 * soon as the widths are known, before the data is prepared.
 */
export function checkCoderWidths(train: TrainConfig, widths: Readonly<Record<string, number>>): void {
  for (const v of variantsOf(train)) {
    for (const [hookpoint, width] of Object.entries(widths)) {
      const m = numLatentsFor(v.sae, width);
      const where = `${hookpoint === 'layers' ? 'the layers' : `'${hookpoint}'`} (width ${width}${v.sae.numLatents ? '' : ` x expansion_factor ${v.sae.expansionFactor}`}${v.name ? `, configuration ${v.name}` : ''})`;
      const problem = coderShapeProblem(v.sae, m, `the ${m} latents of ${where}`);
      if (problem) throw new ConfigError(describeProblem(problem));
    }
  }
}
