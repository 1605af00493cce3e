/**
 * What the CLI checks before it starts Python or loads a model, so that a mistake costs a
 * second, not a model load: local paths exist, --data_args parse, the save directory is
 * writable, and the run directory is free (or holds the checkpoint --resume asks for).
 */
import { resolve } from 'node:path';
import { parseDataArgs, type RunOptions, type TrainConfig } from '../config/train.js';
import { checkResumable } from '../trainer/run-state.js';
import { checkNotLocked, checkSaveDir, holdsRun, RunDirError } from '../trainer/run-dir.js';
import { expandHome, localPath } from '../util/paths.js';

export interface Preflight {
  runDir: string;
  /** The model and dataset, local paths resolved (home expanded), Hub names as given. */
  model: string;
  dataset: string;
  dataArgs: Record<string, string | number | boolean>;
}

/** Run the checks; `rank` is this process's rank under torchrun (0 otherwise). */
export function preflight(train: TrainConfig, run: RunOptions, rank: number): Preflight {
  // From a cache there is no model or dataset to find (the cache's index names them).
  const model = run.fromCache ? '' : (localPath(run.model, 'model') ?? run.model);
  const dataset = run.fromCache ? '' : (localPath(run.dataset, 'dataset') ?? run.dataset);
  if (run.fromCache) localPath(run.fromCache, 'from_cache');
  if (train.finetune) localPath(train.finetune, 'finetune');
  const dataArgs = parseDataArgs(run.dataArgs);
  const saveDir = expandHome(train.saveDir);
  checkSaveDir(saveDir);
  const runDir = resolve(saveDir, train.runName ?? 'unnamed');
  if (rank === 0) {
    checkNotLocked(runDir);
    if (run.resume) checkResumable(runDir, train, { distributeModules: train.distributeModules, rank });
    else if (holdsRun(runDir) && !run.overwrite) {
      throw new RunDirError(`${runDir} already holds a run; pass --resume to continue it, or --overwrite to move it aside and start a new one (or choose another --run_name)`);
    }
  }
  return { runDir, model, dataset, dataArgs };
}
