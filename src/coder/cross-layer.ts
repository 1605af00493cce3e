/**
 * `CrossLayerTranscoder`: a cross-layer transcoder over a contiguous run of layers (the math:
 * src/math/cross-layer.ts). Its folder holds `cfg.json` (the coder config with
 * `cross_layer: true`, the source layers in order and `d_in`) and one sub-folder per source
 * layer with `sae.safetensors`: `encoder.weight` [M, D], `encoder.bias` [M], `W_dec`
 * [M, n - i, D] (its decoders by target, this layer first), `b_dec` [D] (this layer's target
 * bias) and the activation's own tensors. The sub-folders have no cfg.json of their own, so no
 * per-layer loader takes one for a transcoder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SparsifyError } from '../bridge/errors.js';
import { getRuntime } from '../bridge/runtime.js';
import { loadTensors, safetensorsHeader, saveTensors, type DType, type PyObject, type Tensor } from '../bridge/ops.js';
import { coderConfigFromJson, coderConfigToJson, numLatentsFor, sparseCoderConfig, type SparseCoderConfig, type SparseCoderConfigInput } from '../config/sparse-coder.js';
import { activation } from '../activations/index.js';
import { runProgram } from '../kernels/index.js';
import { REFERENCE_LOSSES, type LossOptions } from '../math/sparse-coder.js';
import { paramNames, storedNames, structureOf, type CoderStructure } from '../math/structure.js';
import { writeFileAtomic } from '../util/files.js';
import { CFG_FILE, CoderFileError, WEIGHTS_FILE, isCrossLayerDir } from './files.js';
import { findCoderDirs } from './discover.js';
import { crossLayerDecodeProgram, crossLayerEncodeProgram, crossLayerForwardProgram, crossLayerInitProgram, crossLayerSourceViewProgram } from './cross-layer-programs.js';
import { SparseCoder } from './sparse-coder.js';

export { isCrossLayerDir };

/** A CLT's forward: per target its reconstruction, fvu and its source's AuxK loss; per source its selection (rows); the summed fvu. */
export interface CrossLayerForwardOutput {
  recon: Tensor[];
  fvu: Tensor[];
  auxkLoss: Tensor[];
  latentActs: Tensor[];
  latentIndices: Tensor[];
  /** The training loss's reconstruction part: by default the sum over targets of each target's fvu (`losses.crossLayerLoss`). */
  loss: Tensor;
}

/** Why this config cannot be a CLT's, or null. */
export function crossLayerUnsupported(cfg: SparseCoderConfig): string | null {
  if (!cfg.transcode) return 'a cross-layer transcoder is a transcoder: give --transcode';
  if (cfg.skipConnection) return 'skip connections are not supported with --cross_layer';
  if (cfg.multiTopk) return 'multi_topk is not supported with --cross_layer';
  if (cfg.matryoshkaPrefixes.length) return 'matryoshka prefixes are not supported with --cross_layer';
  return null;
}

/** A CLT folder's source layers (its cfg.json's `layers`), read without loading it. */
export function crossLayerLayers(dir: string): string[] {
  const path = join(dir, CFG_FILE);
  let layers: unknown;
  try {
    layers = (JSON.parse(readFileSync(path, 'utf8')) as { layers?: unknown }).layers;
  } catch (err) {
    throw new CoderFileError(`${path}: not readable JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(layers) || layers.length === 0 || !layers.every((l) => typeof l === 'string')) throw new CoderFileError(`${path}: layers must be the list of source layers`);
  return layers as string[];
}

/** Why `dir` cannot be finetuned from as a CLT (it is not one's folder), or undefined. */
export function notCrossLayerFinetune(dir: string): string | undefined {
  if (isCrossLayerDir(dir)) return undefined;
  const perLayer = existsSync(dir) && findCoderDirs(dir).length > 0;
  return `finetune: ${dir} is not a cross-layer transcoder's folder (no cfg.json saying cross_layer${perLayer ? '; it holds per-layer coders' : ''}); give the folder of a CLT run`;
}

/** A CLT folder's cfg.json: the coder config (with the k it trains with now), `cross_layer: true`, the source layers, `d_in`. */
export async function writeCrossLayerConfig(dir: string, clt: CrossLayerShape, k = clt.cfg.k): Promise<void> {
  await writeFileAtomic(join(dir, CFG_FILE), JSON.stringify({ ...coderConfigToJson({ ...clt.cfg, k }, clt.dIn), cross_layer: true, layers: clt.layers }));
}

const args = (prefix: string, values: readonly unknown[]): Record<string, unknown> => Object.fromEntries(values.map((v, i) => [`${prefix}${i}`, v]));

/**
 * A cross-layer transcoder: per source layer an encoder, and decoders to that layer's MLP
 * output and every later one's.
 *
 * @example
 * const clt = await CrossLayerTranscoder.create(128, ['layers.0.mlp', 'layers.1.mlp'], { k: 16, numLatents: 512 }, { seed: 0 });
 * const { fvu, loss } = await clt.forward([x0, x1], [y0, y1]);
 * await clt.saveToDisk('checkpoints/clt');
 */
export class CrossLayerTranscoder {
  private constructor(
    readonly cfg: SparseCoderConfig,
    /** The source layers (hookpoints), in order: source i writes to targets i..n-1. */
    readonly layers: readonly string[],
    readonly dIn: number,
    /** Each source's tensors, named as in its `sae.safetensors`. */
    readonly sources: readonly PyObject[],
    readonly device: string,
    readonly dtype: DType,
  ) {}

  get numLatents(): number {
    return numLatentsFor(this.cfg, this.dIn);
  }

  get structure(): CoderStructure {
    return structureOf(this.cfg);
  }

  /** A new CLT: each source a transcoder's init (seeded once, drawn source after source), all decoders zero. */
  static async create(dIn: number, layers: readonly string[], cfg: SparseCoderConfigInput = {}, options: { seed?: number; device?: string; dtype?: DType } = {}): Promise<CrossLayerTranscoder> {
    const full = sparseCoderConfig({ ...cfg, transcode: cfg.transcode ?? true }, 'cross-layer transcoder config');
    const why = crossLayerUnsupported(full);
    if (why) throw new SparsifyError(why);
    if (layers.length === 0 || new Set(layers).size !== layers.length) throw new SparsifyError(`a cross-layer transcoder needs distinct source layers (got ${layers.join(', ') || 'none'})`);
    const device = options.device ?? 'cpu';
    (await getRuntime()).checkDevice(device);
    const dtype = options.dtype ?? 'float32';
    const out = (await runProgram(crossLayerInitProgram(structureOf(full), layers.length), { seed: options.seed ?? null, dIn, numLatents: numLatentsFor(full, dIn), device, dtype })) as Record<string, PyObject>;
    return new CrossLayerTranscoder(full, [...layers], dIn, layers.map((_, i) => out[`p${i}`]!), device, dtype);
  }

  private checkInputs(xs: readonly Tensor[], what: string): void {
    if (xs.length !== this.layers.length) throw new SparsifyError(`${what}: give one tensor per source layer (${this.layers.length}: ${this.layers.join(', ')}); got ${xs.length}`);
    xs.forEach((x, i) => {
      if (x.shape.length !== 2 || x.shape[1] !== this.dIn) throw new SparsifyError(`${what} ${i} (${this.layers[i]}) must have shape [N, ${this.dIn}]; got [${x.shape.join(', ')}]`);
      if (x.shape[0] !== xs[0]!.shape[0]) throw new SparsifyError(`${what}: every layer needs the same tokens (${xs[0]!.shape[0]} rows at ${this.layers[0]}, ${x.shape[0]} at ${this.layers[i]})`);
    });
  }

  /** This CLT's configuration and layers over other tensors (one bundle per source, named as `sources`): a training run's saved parameters, say. */
  withSources(sources: readonly PyObject[]): CrossLayerTranscoder {
    if (sources.length !== this.layers.length) throw new SparsifyError(`withSources: give one bundle per source layer (${this.layers.length}); got ${sources.length}`);
    return new CrossLayerTranscoder(this.cfg, this.layers, this.dIn, [...sources], this.device, this.dtype);
  }

  /**
   * Source `source`'s latents as a per-layer coder over its own layer's input (for the tools
   * that take one: the explorer's cache, a prompt's latents), its decoder the sum of its
   * decoders over the targets (`target` undefined: the latent's whole write to the residual
   * stream) or its decoder to layer `source + target`; and each latent's decoder norm per
   * target ([M, n - source], float32).
   */
  async sourceView(source: number, target?: number): Promise<{ coder: SparseCoder; decoderNorms: Tensor }> {
    const p = this.sources[source];
    if (!p) throw new SparsifyError(`source ${source} is out of range: this CLT has sources 0..${this.layers.length - 1}`);
    if (target !== undefined && !(Number.isInteger(target) && target >= 0 && target < this.layers.length - source)) throw new SparsifyError(`target ${target} is out of range: source ${source} (${this.layers[source]}) writes to targets 0..${this.layers.length - source - 1}`);
    const out = (await runProgram(crossLayerSourceViewProgram(this.structure, target === undefined ? 'sum' : 'target'), { p, target: target ?? 0 })) as { view: PyObject; norms: Tensor };
    return { coder: SparseCoder.overParams(this.cfg, this.dIn, out.view, this.device, this.dtype), decoderNorms: out.norms };
  }

  /** Each source's selection of its input (inference's encode), as rows [N, k]. */
  async encode(xs: readonly Tensor[]): Promise<{ topActs: Tensor; topIndices: Tensor }[]> {
    this.checkInputs(xs, 'x');
    const out = (await runProgram(crossLayerEncodeProgram(this.structure, this.layers.length), { ...args('p', this.sources), ...args('x', xs), k: this.cfg.k } as never)) as Record<string, Tensor>;
    return this.layers.map((_, i) => ({ topActs: out[`acts${i}`]!, topIndices: out[`indices${i}`]! }));
  }

  /** Every target's reconstruction from the sources' selections (as encode gives them). */
  async decode(codes: readonly { topActs: Tensor; topIndices: Tensor }[]): Promise<Tensor[]> {
    if (codes.length !== this.layers.length) throw new SparsifyError(`decode: give one selection per source layer (${this.layers.length}); got ${codes.length}`);
    const out = (await runProgram(crossLayerDecodeProgram(this.structure, this.layers.length), { ...args('p', this.sources), ...args('acts', codes.map((c) => c.topActs)), ...args('indices', codes.map((c) => c.topIndices)) } as never)) as Record<string, Tensor>;
    return this.layers.map((_, i) => out[`recon${i}`]!);
  }

  /**
   * The training forward: `xs[i]` the MLP input at source i, `ys[j]` the MLP output at target
   * j; AuxK for the sources whose `deadMasks` mark dead latents. Autograd records it with `grad`.
   */
  async forward(xs: readonly Tensor[], ys: readonly Tensor[], options: { deadMasks?: readonly (Tensor | null)[]; grad?: boolean; losses?: LossOptions } = {}): Promise<CrossLayerForwardOutput> {
    this.checkInputs(xs, 'x');
    this.checkInputs(ys, 'y');
    const n = this.layers.length;
    const dead = options.deadMasks ?? [];
    const out = (await runProgram(crossLayerForwardProgram(this.structure, n, options.losses ?? REFERENCE_LOSSES), {
      ...args('p', this.sources),
      ...args('x', xs),
      ...args('y', ys),
      ...args('deadMask', this.layers.map((_, i) => dead[i] ?? null)),
      k: this.cfg.k,
      grad: options.grad ?? false,
    } as never)) as Record<string, Tensor>;
    const per = (name: string): Tensor[] => this.layers.map((_, i) => out[`${name}${i}`]!);
    return { recon: per('recon'), fvu: per('fvu'), auxkLoss: per('auxk'), latentActs: per('acts'), latentIndices: per('indices'), loss: out.loss! };
  }

  /** Write the CLT's folder: cfg.json, and per source layer its sae.safetensors. */
  async saveToDisk(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    for (const [i, layer] of this.layers.entries()) {
      await mkdir(join(dir, layer), { recursive: true });
      await saveTensors(join(dir, layer, WEIGHTS_FILE), this.sources[i]!, { format: 'pt' });
    }
    await writeCrossLayerConfig(dir, this);
  }

  /** Load a CLT folder; every source's tensors are checked against cfg.json first. */
  static async load(dir: string, options: { device?: string } = {}): Promise<CrossLayerTranscoder> {
    const { cfg, layers, dIn, files, dtype } = await readCrossLayerFolder(dir);
    const device = options.device ?? 'cpu';
    (await getRuntime()).checkDevice(device);
    const trained = new Set<string>(paramNames(structureOf(cfg)));
    const names = storedNames(structureOf(cfg));
    const sources: PyObject[] = [];
    for (const file of files) sources.push(await loadTensors(file, { device, names, requiresGrad: names.filter((n) => trained.has(n)) }));
    return new CrossLayerTranscoder(cfg, layers, dIn, sources, device, dtype);
  }
}

/** What a CLT is without its tensors: its configuration, layers and width (all a training run's share of one needs). */
export type CrossLayerShape = Pick<CrossLayerTranscoder, 'cfg' | 'layers' | 'dIn'>;

/**
 * A CLT folder's description, every source's tensors checked against its cfg.json (names and
 * shapes, from the files' headers; no tensor is read): its config, layers, width, each
 * source's weights file and their dtype.
 */
export async function readCrossLayerFolder(dir: string): Promise<CrossLayerShape & { files: string[]; dtype: DType }> {
  const path = join(dir, CFG_FILE);
  if (!existsSync(path)) throw new CoderFileError(`${path}: not found (a cross-layer transcoder's folder holds ${CFG_FILE} and a folder per source layer)`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new CoderFileError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (json.cross_layer !== true) throw new CoderFileError(`${dir} holds a per-layer coder, not a cross-layer transcoder; load it with SparseCoder.loadFromDisk`);
  const layers = crossLayerLayers(dir);
  const { cfg, dIn } = coderConfigFromJson(json, path);
  const m = numLatentsFor(cfg, dIn);
  const files: string[] = [];
  let dtype: DType = 'float32';
  for (const [i, layer] of layers.entries()) {
    const file = join(dir, layer, WEIGHTS_FILE);
    if (!existsSync(file)) throw new CoderFileError(`${file}: not found (source layer ${layer} of ${path})`);
    const header = await safetensorsHeader(file);
    const want: Record<string, number[]> = { 'encoder.weight': [m, dIn], 'encoder.bias': [m], W_dec: [m, layers.length - i, dIn], b_dec: [dIn] };
    for (const p of activation(cfg.activation).params) want[p.name] = p.shape(m, dIn);
    for (const [name, shape] of Object.entries(want)) {
      const found = header.tensors[name]?.shape;
      if (!found) throw new CoderFileError(`${file}: tensor '${name}' is missing (expected shape [${shape.join(', ')}])`);
      if (found.join(',') !== shape.join(',')) throw new CoderFileError(`${file}: tensor '${name}' has shape [${found.join(', ')}] but ${CFG_FILE} needs [${shape.join(', ')}]`);
    }
    dtype = header.tensors['encoder.weight']!.dtype as DType;
    files.push(file);
  }
  return { cfg, layers, dIn, files, dtype };
}
