/** Evaluation during training (`--eval_every`): the coders as they would be saved now, on held-out rows. */
import type { TrainConfig } from '../config/train.js';
import type { TokenDataset } from '../data/dataset.js';
import { evaluate, evaluateCrossLayer, type CrossLayerEvalReport, type EvalCoder, type EvalReport } from '../eval/index.js';
import type { TrainableModel } from '../model/language-model.js';
import { CrossLayerTranscoder } from '../coder/cross-layer.js';
import { ConfigError } from '../config/errors.js';
import { crossLayerGroups, savedParams, type CoderSlot } from './slots.js';

/**
 * Evaluate the slots' coders as they would be saved now (the optimizer's saved parameters,
 * in copies: schedule-free's x) with the k of the next batch, on the held-out rows: no data,
 * RNG or parameter of training changes.
 */
export async function evaluateAsSaved(
  model: TrainableModel,
  slots: readonly CoderSlot[],
  data: { dataset: TokenDataset; rows: readonly [number, number] },
  cfg: Pick<TrainConfig, 'batchSize' | 'excludeTokens'>,
): Promise<EvalReport> {
  const coders: EvalCoder[] = [];
  for (const s of slots) {
    coders.push({ name: s.name, hookpoint: s.hookpoint, coder: s.coder, params: await savedParams(s), k: s.k });
  }
  return evaluate(model, coders, data.dataset, { rows: data.rows, batchSize: cfg.batchSize, excludeTokens: cfg.excludeTokens });
}

/**
 * Evaluate the run's cross-layer transcoders as they would be saved now (as
 * {@link evaluateAsSaved}): each CLT's targets and its replacement model, keyed by the CLT's
 * folder in the run ('' for the run directory, a configuration's name in a sweep).
 */
export async function evaluateCrossLayerAsSaved(
  model: TrainableModel,
  slots: readonly CoderSlot[],
  data: { dataset: TokenDataset; rows: readonly [number, number] },
  cfg: Pick<TrainConfig, 'batchSize' | 'excludeTokens'>,
): Promise<Record<string, CrossLayerEvalReport>> {
  const out: Record<string, CrossLayerEvalReport> = {};
  for (const group of crossLayerGroups(slots)) {
    const saved = [];
    for (const s of group) saved.push(await savedParams(s));
    const { clt, dir } = group[0]!.crossLayer!;
    // With distributed modules no rank holds a whole CLT (the config refuses eval_every there).
    if (!(clt instanceof CrossLayerTranscoder)) throw new ConfigError('eval_every: with distribute_modules no rank holds a whole cross-layer transcoder; evaluate its checkpoint with sparsify eval');
    out[dir] = await evaluateCrossLayer(model, clt.withSources(saved), data.dataset, { rows: data.rows, batchSize: cfg.batchSize, excludeTokens: cfg.excludeTokens, k: group[0]!.k });
  }
  return out;
}
