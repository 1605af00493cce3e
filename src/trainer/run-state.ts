/**
 * A run's checkpoint: the coders (in the reference's layout), the trainer state (step,
 * optimizer state, dead-latent counters, best losses: safetensors + JSON, no pickles) and
 * the run's config, saved atomically through checkpoint.ts. With distributed modules each
 * rank saves its own coders and its own `state-rankN` files; otherwise rank 0 saves all.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleCopyInto, bundleUpdate, distBarrier, loadState, loadTensors, saveState, saveTensors, type PyObject } from '../bridge/ops.js';
import { SparsifyError } from '../bridge/errors.js';
import { ConfigError } from '../config/errors.js';
import { snakeCase } from '../util/case.js';
import { sameJson } from '../util/same-json.js';
import type { TrainConfig } from '../config/train.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { CFG_FILE, WEIGHTS_FILE, writeCoderDir } from '../coder/files.js';
import { writeCrossLayerConfig } from '../coder/cross-layer.js';
import { beginSave, commitSave, finishSave, readMarker, recover, stageSave, writeMarker } from './checkpoint.js';
import { optimizer } from '../optimizers/index.js';
import { loadShard, shardToSources } from './cross-layer-layout.js';
import { crossLayerGroups, savedParams, type CoderSlot } from './slots.js';

const STATE_VERSION = 1;

/** The counters a checkpoint restores. */
export interface Progress {
  globalStep: number;
  optimizerStep: number;
  tokensSeen: number;
  k: number;
}

/** What a checkpoint is made from. */
export interface RunStateSource extends Progress {
  readonly cfg: TrainConfig;
  readonly runDir: string;
  readonly slots: readonly CoderSlot[];
  readonly rank: number;
  readonly worldSize: number;
  /** Hookpoints spread across ranks (each rank saves its own coders and state). */
  readonly distributeModules: boolean;
  /** The full run configuration for config.json. */
  readonly runConfig: Record<string, unknown>;
  readonly device: string;
}

/** The trainer-state file names of a rank (one set per rank with distributed modules). */
function stateFiles(run: Pick<RunStateSource, 'distributeModules' | 'rank'>): { json: string; tensors: string } {
  const suffix = run.distributeModules ? `-rank${run.rank}` : '';
  return { json: `state${suffix}.json`, tensors: `state${suffix}.safetensors` };
}

/**
 * Fail unless `dir` holds a checkpoint this run can continue: its state file is there, and
 * the coders were trained with the same coder settings (a change would silently rewrite
 * every cfg.json, or fail on the first tensor of another shape).
 */
export function checkResumable(dir: string, cfg: TrainConfig, place: Pick<RunStateSource, 'distributeModules' | 'rank'>): void {
  const statePath = join(dir, stateFiles(place).json);
  if (!existsSync(statePath)) throw new SparsifyError(`cannot resume: ${statePath} not found (no checkpoint in ${dir}); start without --resume`);
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) return;
  const savedConfig = JSON.parse(readFileSync(configPath, 'utf8')) as { sae?: Record<string, unknown>; sweep?: string[] };
  const savedSweep = savedConfig.sweep ?? [];
  if (savedSweep.join('\n') !== cfg.sweep.join('\n')) {
    throw new ConfigError(`cannot resume from ${dir}: it swept ${savedSweep.length ? savedSweep.map((e) => `"${e}"`).join(' ') : 'nothing'}, this run sweeps ${cfg.sweep.length ? cfg.sweep.map((e) => `"${e}"`).join(' ') : 'nothing'}; resume with the same --sweep, or start a new run`);
  }
  const saved = savedConfig.sae ?? {};
  for (const [key, now] of Object.entries(cfg.sae)) {
    const flag = snakeCase(key);
    if (!(flag in saved) || sameJson(saved[flag], now)) continue;
    // As the flag takes it: a list as its values one after another.
    const was = saved[flag];
    const resumeWith = Array.isArray(was) ? (was.length ? `with --${flag} ${was.join(' ')}` : `without --${flag}`) : `with --${flag} ${JSON.stringify(was)}`;
    throw new ConfigError(`cannot resume from ${dir}: its coders were trained with ${flag}=${JSON.stringify(was)}, this run has ${flag}=${JSON.stringify(now)}; resume ${resumeWith}, or start a new run`);
  }
}

/** Staging tag: ranks that save into the same directory must not share a staging folder. */
function saveTag(run: RunStateSource): string {
  return run.distributeModules ? `-rank${run.rank}` : '';
}

/** Whether this rank writes checkpoints (data parallel: rank 0 only; distributed modules: every rank, its own coders). */
function saves(run: RunStateSource): boolean {
  return run.rank === 0 || run.distributeModules;
}

/**
 * Write a coder as saved: schedule-free's x (from y and z, y untouched), else the
 * parameters. Its cfg.json records the k it trains with now, as the reference's does (they
 * differ while k decays).
 */
async function writeCoder(dir: string, slot: CoderSlot): Promise<void> {
  const params = await savedParams(slot);
  if (slot.crossLayer) {
    // A cross-layer transcoder's source: its tensors only (the CLT's cfg.json is the folder's).
    await mkdir(dir, { recursive: true });
    await saveTensors(join(dir, WEIGHTS_FILE), params, { format: 'pt' });
    return;
  }
  await writeCoderDir(dir, { ...slot.coder.cfg, k: slot.k }, slot.coder.dIn, params);
}

/**
 * Write the slots into `staging` (each cross-layer transcoder's cfg.json beside its sources);
 * the entries written. A CLT's share (distributed modules) is written by source, every rank
 * taking part in moving its decoders to their sources' owners; rank 0 writes its cfg.json.
 */
async function writeCoders(staging: string, slots: readonly CoderSlot[], rank: number): Promise<string[]> {
  const entries: string[] = [];
  for (const slot of slots) {
    if (slot.crossLayer?.shard) continue;
    await writeCoder(join(staging, slot.name), slot);
    entries.push(slot.name);
  }
  for (const group of crossLayerGroups(slots)) {
    const { clt, dir, shard } = group[0]!.crossLayer!;
    if (shard) {
      const saved: PyObject[] = [];
      for (const slot of group) saved.push(await savedParams(slot));
      const bySource = await shardToSources(clt, shard, saved);
      for (const [t, slot] of group.entries()) {
        await mkdir(join(staging, slot.name), { recursive: true });
        await saveTensors(join(staging, slot.name, WEIGHTS_FILE), bySource[t]!, { format: 'pt' });
        entries.push(slot.name);
      }
      if (rank !== 0) continue;
    }
    await mkdir(join(staging, dir), { recursive: true });
    await writeCrossLayerConfig(join(staging, dir), clt, group[0]!.k);
    entries.push(join(dir, CFG_FILE));
  }
  return entries;
}

/**
 * Save coders, config and trainer state atomically into the run directory, every rank at
 * once: each writing rank stages its part, then (all staged) rank 0 writes the marker, then
 * each moves its part into place (checkpoint.ts). A rank killed at any point leaves the last
 * complete checkpoint readable.
 */
export async function saveCheckpoint(run: RunStateSource): Promise<void> {
  if (saves(run)) await stageCheckpoint(run);
  if (run.worldSize > 1) await distBarrier();
  if (run.rank === 0) await writeMarker(run.runDir, { step: run.globalStep, world_size: run.worldSize });
  if (run.worldSize > 1) await distBarrier();
  if (saves(run)) await finishSave(run.runDir, saveTag(run));
}

/** Tests: SIGKILL this process once its part of the checkpoint at this step is staged (SPARSIFY_TEST_DIE_IN_SAVE=step[,rank]). */
function dieInSaveForTests(run: RunStateSource): void {
  const spec = process.env.SPARSIFY_TESTING ? process.env.SPARSIFY_TEST_DIE_IN_SAVE : undefined;
  if (!spec) return;
  const [step, rank] = spec.split(',').map(Number);
  if (step === run.globalStep && (rank ?? 0) === run.rank) process.kill(process.pid, 'SIGKILL');
}

/**
 * Whether `dir` holds a complete checkpoint to resume from (`--resume auto`): its marker (or,
 * from a run saved before markers, its state file).
 */
export function hasCompleteCheckpoint(dir: string): boolean {
  return readMarker(dir) !== undefined || existsSync(join(dir, 'state.json')) || existsSync(join(dir, 'state-rank0.json'));
}

/** This rank's part of a checkpoint, staged durably (the first phase). */
async function stageCheckpoint(run: RunStateSource): Promise<void> {
  const tag = saveTag(run);
  const staging = await beginSave(run.runDir, tag);
  const entries = await writeCoders(staging, run.slots, run.rank);
  const groups: Record<string, PyObject> = {};
  for (const slot of run.slots) {
    groups[`state:${slot.name}`] = slot.state;
    // An optimizer that saves other parameters than it trains on (schedule-free: x and y) keeps those too.
    if (optimizer(slot.variant.optimizer).saved) groups[`train:${slot.name}`] = slot.coder.params;
  }
  const files = stateFiles(run);
  await saveState(join(staging, files.tensors), groups);
  const state = {
    version: STATE_VERSION,
    world_size: run.worldSize,
    distribute_modules: run.distributeModules,
    global_step: run.globalStep,
    optimizer_step: run.optimizerStep,
    tokens_seen: run.tokensSeen,
    k: run.k,
    batch_size: run.cfg.batchSize,
    optimizer: run.cfg.optimizer,
    coders: Object.fromEntries(
      run.slots.map((s) => {
        const host = optimizer(s.variant.optimizer).host;
        return [s.name, { hookpoint: s.hookpoint, seed: s.seed, optimizer: s.variant.optimizer, k: s.k, lr: s.lr, ...(host ? { [host.key]: s.host } : {}), best_loss: Number.isFinite(s.bestLoss) ? s.bestLoss : null }];
      }),
    ),
  };
  await writeFile(join(staging, files.json), JSON.stringify(state, null, 2));
  entries.push(files.tensors, files.json);
  if (run.rank === 0) {
    await writeFile(join(staging, 'config.json'), JSON.stringify(run.runConfig, null, 2));
    entries.push('config.json');
  }
  await stageSave(run.runDir, entries, run.globalStep, tag);
  dieInSaveForTests(run);
}

/** Save these coders (the ones whose loss improved) under `best/`, atomically. */
export async function saveBestCoders(run: RunStateSource, better: readonly CoderSlot[]): Promise<void> {
  if (!better.length || !saves(run)) return;
  const bestDir = join(run.runDir, 'best');
  const tag = saveTag(run);
  const staging = await beginSave(bestDir, tag);
  // A cross-layer transcoder is one coder: all of it, when the loss of one of its targets improved.
  const slots = better[0]!.crossLayer ? crossLayerGroups(run.slots).filter((g) => g.some((s) => better.includes(s))).flat() : better;
  await commitSave(bestDir, await writeCoders(staging, slots, run.rank), tag);
}

interface SavedState {
  version: number;
  world_size?: number;
  global_step: number;
  optimizer_step: number;
  tokens_seen: number;
  k: number;
  batch_size: number;
  optimizer: string;
  coders: Record<string, Record<string, unknown> & { best_loss: number | null; optimizer?: string; k?: number }>;
}

/**
 * Restore a checkpoint from `dir` into the run's coders and state (after finishing or
 * discarding an interrupted save); returns the counters to continue from.
 */
export async function loadCheckpoint(run: RunStateSource, dir: string, log: (m: string) => void): Promise<Progress> {
  if (saves(run)) {
    // Each writing rank its own part (data parallel: rank 0 the whole).
    const recovered = await recover(dir, saveTag(run));
    if (recovered !== 'none') log(`${dir}: an interrupted save was ${recovered === 'rolled-forward' ? 'completed' : 'discarded'}`);
  }
  // Data-parallel ranks read what rank 0 may just have repaired.
  if (run.worldSize > 1) await distBarrier();
  checkResumable(dir, run.cfg, run);
  const files = stateFiles(run);
  const state = JSON.parse(readFileSync(join(dir, files.json), 'utf8')) as SavedState;
  const names = Object.keys(state.coders).sort();
  const mine = run.slots.map((s) => s.name).sort();
  if (names.join('\n') !== mine.join('\n')) {
    throw new ConfigError(`cannot resume from ${dir}: it trained ${names.join(', ')} but this run trains ${mine.join(', ')}`);
  }
  const cfg = run.cfg;
  if ((state.world_size ?? 1) !== run.worldSize) throw new ConfigError(`cannot resume from ${dir}: it ran with world size ${state.world_size ?? 1}, this run has ${run.worldSize}; resume with the same world size`);
  for (const slot of run.slots) {
    const had = state.coders[slot.name]!.optimizer ?? state.optimizer;
    if (had !== slot.variant.optimizer) throw new ConfigError(`cannot resume from ${dir}: ${slot.name} used optimizer ${had}, this run ${slot.variant.optimizer}`);
  }
  if (state.batch_size !== cfg.batchSize) throw new ConfigError(`cannot resume from ${dir}: it used batch_size ${state.batch_size}, this run ${cfg.batchSize}`);
  for (const slot of run.slots) {
    // A module whose width changed since (another model): say so rather than fail on a tensor.
    const cfgPath = join(dir, slot.name, 'cfg.json');
    const savedDIn = existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, 'utf8')) as { d_in?: number }).d_in : undefined;
    if (savedDIn !== undefined && savedDIn !== slot.coder.dIn) {
      throw new ConfigError(`cannot resume from ${dir}: ${slot.name} was trained on width ${savedDIn}, but '${slot.hookpoint}' of this model has width ${slot.coder.dIn}`);
    }
  }
  const groups = await loadState(join(dir, files.tensors), run.device);
  for (const slot of run.slots) {
    const train = groups[`train:${slot.name}`];
    const shard = slot.crossLayer?.shard;
    const saved = train ?? (shard ? (await loadShard(join(dir, slot.crossLayer!.dir), [slot.crossLayer!.source], run.device))[0]! : slot.crossLayer ? await loadTensors(join(dir, slot.name, WEIGHTS_FILE), { device: run.device }) : (await SparseCoder.loadFromDisk(join(dir, slot.name), { device: run.device })).params);
    await bundleCopyInto(slot.coder.params, saved);
    await bundleUpdate(slot.state, groups[`state:${slot.name}`]!);
    const coderState = state.coders[slot.name]!;
    const host = optimizer(slot.variant.optimizer).host;
    if (host) Object.assign(slot.host as object, coderState[host.key]);
    slot.k = coderState.k ?? state.k;
    slot.bestLoss = coderState.best_loss ?? Infinity;
  }
  return { globalStep: state.global_step, optimizerStep: state.optimizer_step, tokensSeen: state.tokens_seen, k: state.k };
}
