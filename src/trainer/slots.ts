/**
 * The coders a run trains ("slots"): one per hookpoint, configuration (of a sweep) and seed;
 * which of them this rank holds (all, or its share with distributed modules); each made as
 * the reference makes it (float32 master weights, the checkpoint copied in when finetuning)
 * with its optimizer state.
 */
import { join } from 'node:path';
import { bundleCopyInto, type HookWidth, type PyObject } from '../bridge/ops.js';
import { ConfigError } from '../config/errors.js';
import { numLatentsFor } from '../config/sparse-coder.js';
import type { Variant } from '../config/sweep.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { CrossLayerTranscoder, notCrossLayerFinetune, readCrossLayerFolder, type CrossLayerShape } from '../coder/cross-layer.js';
import { contiguousLayersProblem } from '../model/hookpoints.js';
import { downloadCoderFiles } from '../hub/download.js';
import { runProgram } from '../kernels/index.js';
import { paramNames, storedNames, structureOf } from '../math/structure.js';
import { optimizer } from '../optimizers/index.js';
import { localPath } from '../util/paths.js';
import { saveParamsProgram, stateInitProgram, type CrossLayerShard } from './programs.js';
import { crossLayerOwners, ownedLayers } from './cross-layer-placement.js';
import { initShard, loadShard } from './cross-layer-layout.js';
import { currentK, initialK } from './schedules.js';

/** One coder being trained: a hookpoint, a configuration (of a sweep) and a seed. */
export interface CoderSlot {
  /**
   * Its name in the run directory: the hookpoint, then the configuration's name in a sweep
   * (`layers.3/k64-ef16`), then `seedN` with several seeds.
   */
  readonly name: string;
  readonly hookpoint: string;
  readonly seed: number;
  /** Its coder and optimizer settings (the run's, or one configuration of its sweep). */
  readonly variant: Variant;
  /** The k of its next batch (k decay moves it). */
  k: number;
  readonly coder: SparseCoder;
  /** Optimizer state and dead-latent counters (a runtime bundle). */
  readonly state: PyObject;
  readonly lr: number;
  /** Its optimizer's host-side state (schedule-free's running weights), or undefined. */
  readonly host: unknown;
  bestLoss: number;
  /**
   * A source layer of one of the run's cross-layer transcoders (its coder is a view of that
   * source's tensors); `dir` is the CLT's folder in the run: '' (the run directory), or its
   * configuration's name in a sweep.
   */
  readonly crossLayer?: {
    /** The whole CLT (its tensors the slots' views), or with distributed modules only its shape. */
    readonly clt: CrossLayerTranscoder | CrossLayerShape;
    readonly source: number;
    readonly dir: string;
    /**
     * With distributed modules: which rank owns each layer, and this rank's layers; the slot's
     * coder then holds layer `source` as a source and as a target (W_dec [source + 1, M, D]: the
     * decoders into it, cross-layer-layout.ts).
     */
    readonly shard?: CrossLayerShard;
  };
}

/** A slot's parameters as they are saved (its optimizer's: schedule-free's x; else copies of them), for a save or an evaluation. */
export async function savedParams(slot: CoderSlot): Promise<PyObject> {
  return (await runProgram(saveParamsProgram(structureOf(slot.variant.sae), slot.variant.optimizer), { params: slot.coder.params, state: slot.state })).params;
}

/** A CLT slot's name: its layer, under its configuration's folder in a sweep. */
export const crossLayerSlotName = (dir: string, layer: string): string => (dir ? `${dir}/${layer}` : layer);

/** A coder's k for a batch counter: its k decay's schedule, or its configured k. */
export function kAt(slot: Pick<CoderSlot, 'variant' | 'coder'>, batches: number): number {
  const { kDecaySteps, sae } = slot.variant;
  if (kDecaySteps === 0) return sae.k;
  return currentK(batches, kDecaySteps, initialK(slot.coder.numLatents, slot.coder.dIn), sae.k);
}

/** Where this process stands in the run. */
export interface Placement {
  rank: number;
  worldSize: number;
  /** Hookpoints (with their configurations) spread across ranks. */
  distributeModules: boolean;
  device: string;
  log: (message: string) => void;
}

/** A hookpoint trained with one configuration (its seeds stay together). */
interface Unit {
  hookpoint: string;
  variant: Variant;
}

/**
 * The (hookpoint, configuration) units this rank trains: every one, or with distributed
 * modules an equal share (a sweep on one hookpoint spreads too).
 */
function unitsOf(hookpoints: readonly string[], variants: readonly Variant[], widths: Readonly<Record<string, HookWidth>>, at: Placement): Unit[] {
  const units = hookpoints.flatMap((hookpoint) => variants.map((variant) => ({ hookpoint, variant })));
  if (!at.distributeModules) return units;
  const per = units.length / at.worldSize;
  const what = variants.length > 1 ? `${hookpoints.length} hookpoints x ${variants.length} configurations` : `${hookpoints.length} hookpoints`;
  if (!Number.isInteger(per)) {
    throw new ConfigError(`distribute_modules: ${what} do not divide evenly across ${at.worldSize} ranks; choose hookpoints or a world size that divides them`);
  }
  const sizes = new Set(hookpoints.map((h) => widths[h]!.output));
  if (sizes.size > 1) {
    throw new ConfigError(`distribute_modules needs every hookpoint to have the same width; got ${hookpoints.map((h) => `${h}=${widths[h]!.output}`).join(', ')}`);
  }
  const mine = units.slice(at.rank * per, (at.rank + 1) * per);
  at.log(`Rank ${at.rank} trains ${mine.map((u) => (u.variant.name ? `${u.hookpoint}/${u.variant.name}` : u.hookpoint)).join(', ')}`);
  return mine;
}

export interface SlotRequest {
  hookpoints: readonly string[];
  widths: Readonly<Record<string, HookWidth>>;
  variants: readonly Variant[];
  seeds: readonly number[];
  /** The widths come from an activation cache (which may lack the modules' inputs). */
  cached: boolean;
  /** Coders to start from: a run directory or a Hub repo. */
  finetune?: string | undefined;
  /** One cross-layer transcoder over the hookpoints per configuration (one seed). */
  crossLayer?: boolean;
}

/** Create the coders this rank trains, with their optimizer state. */
export async function createSlots(req: SlotRequest, at: Placement): Promise<CoderSlot[]> {
  if (req.crossLayer) return crossLayerSlots(req, at);
  const units = unitsOf(req.hookpoints, req.variants, req.widths, at);
  // finetune: a local run directory, or a Hub repo of coders (as the reference accepts).
  const finetuneLocal = req.finetune ? localPath(req.finetune, 'finetune') : undefined;
  const finetuneRoot = req.finetune && !finetuneLocal ? await downloadCoderFiles(req.finetune, { subdirPattern: '*' }) : finetuneLocal;
  const slots: CoderSlot[] = [];
  for (const { hookpoint, variant } of units) {
    const w = req.widths[hookpoint]!;
    if (variant.sae.transcode && req.cached && w.input === null) {
      throw new ConfigError(`hookpoint '${hookpoint}': the cache holds its outputs only; a transcoder needs its inputs too (write the cache with --transcode)`);
    }
    if (variant.sae.transcode && w.input !== null && w.input !== w.output) {
      throw new ConfigError(`hookpoint '${hookpoint}': a transcoder needs equal input and output widths (got ${w.input} -> ${w.output})`);
    }
    const opt = optimizer(variant.optimizer);
    for (const seed of req.seeds) {
      const name = [hookpoint, ...(variant.name ? [variant.name] : []), ...(req.seeds.length > 1 ? [`seed${seed}`] : [])].join('/');
      // As the reference: a float32 coder of this run's configuration (its master weights,
      // whatever dtype a finetuned checkpoint was saved in), then the checkpoint copied in.
      const coder = await SparseCoder.create(w.output, variant.sae, { seed, device: at.device });
      if (finetuneRoot) await copyFinetuned(coder, join(finetuneRoot, name), hookpoint, w.output, variant, at.device);
      const { state } = await runProgram(stateInitProgram(structureOf(variant.sae), variant.optimizer), { params: coder.params });
      const slot: CoderSlot = {
        name,
        hookpoint,
        seed,
        variant,
        k: 0,
        coder,
        state,
        lr: variant.lr ?? opt.defaultLr(coder.numLatents),
        host: opt.host?.init(),
        bestLoss: Infinity,
      };
      slot.k = kAt(slot, 0);
      slots.push(slot);
    }
  }
  return slots;
}

/** Copy a saved coder into a new one of this run's configuration (same width and latents). */
async function copyFinetuned(coder: SparseCoder, from: string, hookpoint: string, width: number, variant: Variant, device: string): Promise<void> {
  const loaded = await SparseCoder.loadFromDisk(from, { device });
  if (loaded.dIn !== width) throw new ConfigError(`finetune: ${from} has d_in=${loaded.dIn} but '${hookpoint}' has width ${width}`);
  if (loaded.numLatents !== coder.numLatents || loaded.cfg.skipConnection !== variant.sae.skipConnection) {
    throw new ConfigError(
      `finetune: ${from} has ${loaded.numLatents} latents${loaded.cfg.skipConnection ? ' and a skip connection' : ''}, this run's configuration ${coder.numLatents}${variant.sae.skipConnection ? ' and a skip connection' : ''}; give the same --num_latents/--expansion_factor and --skip_connection`,
    );
  }
  // Its parameters; a learned threshold only where both have one (else this run learns it anew).
  const own = coder.structure;
  const names = loaded.structure.inferenceThreshold ? storedNames(own) : paramNames(own);
  await bundleCopyInto(coder.params, loaded.params, names);
}

/**
 * The slots of the run's cross-layer transcoders (one per configuration): one per source
 * layer, each a view of its CLT's tensors for that source; a finetuned CLT's tensors copied in.
 */
async function crossLayerSlots(req: SlotRequest, at: Placement): Promise<CoderSlot[]> {
  const why = contiguousLayersProblem(req.hookpoints);
  if (why) throw new ConfigError(`cross_layer: ${why}`);
  const widths = new Set(req.hookpoints.map((h) => req.widths[h]!.output));
  const inputs = req.hookpoints.map((h) => req.widths[h]!.input);
  if (widths.size > 1 || inputs.some((w) => w !== null && !widths.has(w))) {
    throw new ConfigError(`cross_layer: every layer needs one width in and out (got ${req.hookpoints.map((h) => `${h}=${req.widths[h]!.input ?? '?'}->${req.widths[h]!.output}`).join(', ')})`);
  }
  if (req.cached && inputs.some((w) => w === null)) throw new ConfigError('cross_layer: the cache holds outputs only; a transcoder needs its inputs too (write the cache with --transcode)');
  const seed = req.seeds[0]!;
  const width = [...widths][0]!;
  const finetuneLocal = req.finetune ? localPath(req.finetune, 'finetune') : undefined;
  const finetuneRoot = req.finetune && !finetuneLocal ? await downloadCoderFiles(req.finetune, { subdirPattern: '*' }) : finetuneLocal;
  if (at.distributeModules) return crossLayerShardSlots(req, at, width, finetuneRoot);
  const slots: CoderSlot[] = [];
  for (const variant of req.variants) {
    const dir = variant.name;
    const clt = await CrossLayerTranscoder.create(width, req.hookpoints, variant.sae, { seed, device: at.device });
    if (finetuneRoot) await copyFinetunedCrossLayer(clt, join(finetuneRoot, dir), at.device);
    const opt = optimizer(variant.optimizer);
    for (const [source, hookpoint] of req.hookpoints.entries()) {
      const coder = SparseCoder.overParams(clt.cfg, width, clt.sources[source]!, at.device, 'float32');
      const { state } = await runProgram(stateInitProgram(structureOf(variant.sae), variant.optimizer), { params: coder.params });
      const name = crossLayerSlotName(dir, hookpoint);
      const slot: CoderSlot = { name, hookpoint, seed, variant, k: 0, coder, state, lr: variant.lr ?? opt.defaultLr(coder.numLatents), host: opt.host?.init(), bestLoss: Infinity, crossLayer: { clt, source, dir } };
      slot.k = kAt(slot, 0);
      slots.push(slot);
    }
  }
  const sweep = req.variants.length > 1 ? ` in ${req.variants.length} configurations (${req.variants.map((v) => v.name).join(', ')}), one CLT each` : '';
  at.log(`Training one cross-layer transcoder over ${req.hookpoints.length} layers (${req.hookpoints.join(', ')}): ${(req.hookpoints.length * (req.hookpoints.length + 1)) / 2} decoders${sweep}`);
  return slots;
}

/**
 * The slots of this rank's share of the run's CLTs with distributed modules: per
 * configuration one slot for each layer it owns (cross-layer-placement.ts), in the layout of
 * cross-layer-layout.ts; a finetuned CLT's share read from its files.
 */
async function crossLayerShardSlots(req: SlotRequest, at: Placement, width: number, finetuneRoot: string | undefined): Promise<CoderSlot[]> {
  const owners = crossLayerOwners(req.hookpoints.length, at.worldSize);
  const owned = ownedLayers(owners, at.rank);
  const shard: CrossLayerShard = { owners, owned };
  const seed = req.seeds[0]!;
  const slots: CoderSlot[] = [];
  for (const variant of req.variants) {
    const dir = variant.name;
    const clt: CrossLayerShape = { cfg: variant.sae, layers: [...req.hookpoints], dIn: width };
    const shares = await initShard(clt, owned, { seed, device: at.device });
    if (finetuneRoot) {
      const from = join(finetuneRoot, dir);
      const saved = await checkFinetuneCrossLayer(clt, from);
      const loaded = await loadShard(from, owned, at.device);
      // Its parameters; a learned threshold only where both have one (as a whole CLT's finetune).
      const names = structureOf(saved.cfg).inferenceThreshold ? storedNames(structureOf(clt.cfg)) : paramNames(structureOf(clt.cfg));
      for (const [t, share] of shares.entries()) await bundleCopyInto(share, loaded[t]!, names);
    }
    const opt = optimizer(variant.optimizer);
    for (const [t, source] of owned.entries()) {
      const hookpoint = req.hookpoints[source]!;
      const coder = SparseCoder.overParams(clt.cfg, width, shares[t]!, at.device, 'float32');
      const { state } = await runProgram(stateInitProgram(structureOf(variant.sae), variant.optimizer), { params: coder.params });
      const slot: CoderSlot = { name: crossLayerSlotName(dir, hookpoint), hookpoint, seed, variant, k: 0, coder, state, lr: variant.lr ?? opt.defaultLr(coder.numLatents), host: opt.host?.init(), bestLoss: Infinity, crossLayer: { clt, source, dir, shard } };
      slot.k = kAt(slot, 0);
      slots.push(slot);
    }
  }
  const n = req.hookpoints.length;
  at.log(`Training one cross-layer transcoder over ${n} layers (${req.hookpoints.join(', ')}): ${(n * (n + 1)) / 2} decoders${req.variants.length > 1 ? `, in each of ${req.variants.length} configurations (${req.variants.map((v) => v.name).join(', ')})` : ''}, its layers spread across ${at.worldSize} ranks (${owners.join(', ')})`);
  at.log(`Rank ${at.rank} trains layers ${owned.map((j) => req.hookpoints[j]).join(', ')} of the cross-layer transcoder${req.variants.length > 1 ? 's' : ''} (as sources, and as targets with every decoder into them)`);
  return slots;
}

/** Fail unless the CLT in `from` has this run's layers, width and latents; its shape. */
async function checkFinetuneCrossLayer(clt: CrossLayerShape, from: string): Promise<CrossLayerShape> {
  const why = notCrossLayerFinetune(from);
  if (why) throw new ConfigError(why);
  const loaded = await readCrossLayerFolder(from);
  if (loaded.layers.join(',') !== clt.layers.join(',')) throw new ConfigError(`finetune: ${from} spans ${loaded.layers.join(', ')}, this run ${clt.layers.join(', ')}; give the same --hookpoints/--layers`);
  if (loaded.dIn !== clt.dIn) throw new ConfigError(`finetune: ${from} has d_in=${loaded.dIn} but the layers have width ${clt.dIn}`);
  const m = numLatentsFor(loaded.cfg, loaded.dIn);
  const own = numLatentsFor(clt.cfg, clt.dIn);
  if (m !== own) throw new ConfigError(`finetune: ${from} has ${m} latents per layer, this run's configuration ${own}; give the same --num_latents/--expansion_factor`);
  return loaded;
}

/** Copy a saved CLT into a new one of this run's configuration (the same layers, width and latents). */
async function copyFinetunedCrossLayer(clt: CrossLayerTranscoder, from: string, device: string): Promise<void> {
  await checkFinetuneCrossLayer(clt, from);
  const loaded = await CrossLayerTranscoder.load(from, { device });
  const own = clt.structure;
  const names = loaded.structure.inferenceThreshold ? storedNames(own) : paramNames(own);
  for (const [i, source] of clt.sources.entries()) await bundleCopyInto(source, loaded.sources[i]!, names);
}

/** The run's cross-layer transcoders, each as its slots in source order (slots of one CLT are adjacent). */
export function crossLayerGroups(slots: readonly CoderSlot[]): CoderSlot[][] {
  const groups: CoderSlot[][] = [];
  for (const slot of slots) {
    if (!slot.crossLayer) continue;
    const last = groups.at(-1);
    if (last && last[0]!.crossLayer!.clt === slot.crossLayer.clt) last.push(slot);
    else groups.push([slot]);
  }
  return groups;
}
