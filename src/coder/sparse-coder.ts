/** The SparseCoder API: create, encode, decode, forward, save and load SAEs and transcoders. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bundleGet, loadTensors, type DType, type PyObject, type Tensor } from '../bridge/ops.js';
import { SparsifyError } from '../bridge/errors.js';
import { getRuntime } from '../bridge/runtime.js';
import { checkCoderShape, numLatentsFor, sparseCoderConfig, type SparseCoderConfig, type SparseCoderConfigInput } from '../config/sparse-coder.js';
import { ConfigError } from '../config/errors.js';
import { paramNames, structureOf, type CoderStructure } from '../math/structure.js';
import type { EncoderOutput as MathEncoderOutput, ForwardOutput as MathForwardOutput } from '../math/sparse-coder.js';
import { runProgram } from '../kernels/index.js';
import { fnmatcher } from '../util/fnmatch.js';
import { localPath } from '../util/paths.js';
import { downloadCoderFiles, type HubOptions } from '../hub/download.js';
import { WEIGHTS_FILE, checkWeights, readCoderConfig, writeCoderDir } from './files.js';
import { findCoderDirs, noCodersMessage } from './discover.js';
import * as programs from './programs.js';

/** Where and how a coder lives. */
export interface CoderPlacement {
  /** torch device string, e.g. 'cpu' or 'cuda:0'. Default 'cpu'. */
  device?: string;
}

export interface CreateOptions extends CoderPlacement {
  /** Seed for `torch.manual_seed` right before init (same seed, same weights as the reference). */
  seed?: number;
  /** Parameter dtype. Default float32, as the reference's trainer uses. */
  dtype?: DType;
}

export interface LoadOptions extends CoderPlacement {
  /** Load W_dec too (default true). With false, only the encoder and b_dec are loaded. */
  decoder?: boolean;
}

export interface LoadManyOptions extends LoadOptions, HubOptions {
  /** Treat `nameOrPath` as a local directory (default: when it exists on disk). */
  local?: boolean;
  /** Only these sub-directories (hookpoint names such as 'layers.10'). */
  layers?: string[];
  /** Only sub-directories matching this fnmatch pattern. */
  pattern?: string;
}

export interface LoadFromHubOptions extends LoadOptions, HubOptions {
  /** The sub-directory (hookpoint) to load; required unless the repo has a top-level cfg.json. */
  hookpoint?: string;
}

/** What encode returns: the selected activations and indices per token ([N, k] for topk and groupmax), and all pre-activations. */
export type EncoderOutput = MathEncoderOutput<Tensor>;

/** What forward returns (the reference's ForwardOutput). */
export type ForwardOutput = MathForwardOutput<Tensor>;

export interface RunOptions {
  /** Record autograd so results can be backpropagated (default false). */
  grad?: boolean;
}

export interface EncodeOptions extends RunOptions {
  /**
   * How to select: 'topk' by the activation's own selection (the k largest per token, group
   * maxima, the batch's N*k largest), 'threshold' by the learned inference threshold
   * (`pre * (pre > theta)`). Default: by the threshold when the coder has learned one.
   */
  mode?: 'topk' | 'threshold';
}

export interface ForwardOptions extends RunOptions {
  /** Latents counted as dead; enables the AuxK loss when any is set. */
  deadMask?: Tensor;
  /**
   * Leave b_dec out of the AuxK reconstruction of the residual (the corrected formula; the
   * reference adds it, its issue #132). Default false, as the reference.
   */
  auxkNoBias?: boolean;
}

/**
 * A k-sparse autoencoder or transcoder whose parameters live in the Python runtime.
 *
 * @example
 * const sae = await SparseCoder.create(64, { k: 8, expansionFactor: 4 }, { seed: 0 });
 * const x = await Tensor.fromArray(new Float32Array(10 * 64).map(Math.random), [10, 64]);
 * const { fvu } = await sae.forward(x);
 * console.log(await fvu.item());
 */
export class SparseCoder {
  private constructor(
    /** The coder's config (defaults filled). */
    readonly cfg: SparseCoderConfig,
    /** Input width D. */
    readonly dIn: number,
    /** The parameters: a Python dict of tensors named as in `sae.safetensors`. */
    readonly params: PyObject,
    readonly device: string,
    readonly dtype: DType,
    /** Whether W_dec is loaded. */
    readonly hasDecoder: boolean,
  ) {}

  /**
   * A coder over tensors already in the runtime, not copied: the trainer's view of one source
   * of a cross-layer transcoder (whose W_dec is [M, n - i, D]; decode and saveToDisk are the
   * CLT's, not this view's).
   */
  static overParams(cfg: SparseCoderConfig, dIn: number, params: PyObject, device: string, dtype: DType): SparseCoder {
    return new SparseCoder(cfg, dIn, params, device, dtype, true);
  }

  /** Number of latents M. */
  get numLatents(): number {
    return numLatentsFor(this.cfg, this.dIn);
  }

  /** The config parts that shape the programs. */
  get structure(): CoderStructure {
    return structureOf(this.cfg);
  }

  /** Create a freshly initialised coder for inputs of width `dIn`, as `SparseCoder.__init__` (sparsify/sparse_coder.py) makes one. */
  static async create(dIn: number, cfg: SparseCoderConfigInput = {}, options: CreateOptions = {}): Promise<SparseCoder> {
    const full = sparseCoderConfig(cfg);
    checkCoderShape(full, dIn, 'sparse coder config');
    const dtype = options.dtype ?? 'float32';
    const device = options.device ?? 'cpu';
    (await getRuntime()).checkDevice(device);
    const { params } = await runProgram(programs.initProgram(structureOf(full)), {
      seed: options.seed ?? null,
      dIn,
      numLatents: numLatentsFor(full, dIn),
      device,
      dtype,
    });
    return new SparseCoder(full, dIn, params, device, dtype, true);
  }

  private checkInput(x: Tensor, what: string, width = this.dIn): void {
    if (x.shape.length !== 2 || x.shape[1] !== width) {
      throw new SparsifyError(`${what} must have shape [N, ${width}] for this coder (d_in=${this.dIn}); got [${x.shape.join(', ')}]`);
    }
  }

  private requireDecoder(what: string): void {
    if (!this.hasDecoder) throw new SparsifyError(`${what} needs the decoder, but this coder was loaded with decoder: false`);
  }

  /**
   * Encode x [N, D] and select latents: by the learned inference threshold when the coder has
   * one (each row then holds its token's latents, padded with zero slots), else by its
   * activation (the top k, group maxima, the batch's top N*k); `mode` chooses.
   */
  async encode(x: Tensor, options: EncodeOptions = {}): Promise<EncoderOutput> {
    this.checkInput(x, 'x');
    if (options.mode === 'threshold') await this.requireThreshold();
    const mode = options.mode === undefined ? 'infer' : options.mode === 'topk' ? 'selection' : 'threshold';
    return runProgram(programs.encodeProgram(this.structure, mode), { params: this.params, x, k: this.cfg.k, grad: options.grad ?? false });
  }

  /** The learned inference threshold, or undefined when the coder has none (or has not learned it yet). */
  async threshold(): Promise<number | undefined> {
    if (!this.structure.inferenceThreshold) return undefined;
    const theta = await (await bundleGet(this.params, 'threshold')).item();
    return theta < 0 ? undefined : theta;
  }

  private async requireThreshold(): Promise<void> {
    if (!this.structure.inferenceThreshold) throw new SparsifyError(`encode mode 'threshold': this ${this.cfg.activation} coder has no inference threshold (train it with --inference_threshold)`);
    if ((await this.threshold()) === undefined) throw new SparsifyError(`encode mode 'threshold': this coder's threshold was never learned (it starts after threshold_start_step optimizer steps)`);
  }

  /** Decode selected latents back to [N, D]. */
  async decode(topActs: Tensor, topIndices: Tensor, options: RunOptions = {}): Promise<Tensor> {
    this.requireDecoder('decode');
    const { out } = await runProgram(programs.decodeProgram(this.structure), { params: this.params, topActs, topIndices, grad: options.grad ?? false });
    return out;
  }

  /** Encode, decode and compute the losses against `y` (x itself when autoencoding). */
  async forward(x: Tensor, y?: Tensor, options: ForwardOptions = {}): Promise<ForwardOutput> {
    this.requireDecoder('forward');
    this.checkInput(x, 'x');
    if (y) this.checkInput(y, 'y', y.shape[1]);
    if (y && !this.cfg.transcode && y.shape[1] !== this.dIn) this.checkInput(y, 'y');
    return runProgram(programs.forwardProgram(this.structure, { auxkBias: !options.auxkNoBias }), {
      params: this.params,
      x,
      y: y ?? null,
      deadMask: options.deadMask ?? null,
      k: this.cfg.k,
      grad: options.grad ?? false,
    });
  }

  /** Scale every decoder row to unit L2 norm (in place). */
  async setDecoderNormToUnitNorm(): Promise<void> {
    this.requireDecoder('setDecoderNormToUnitNorm');
    await runProgram(programs.unitNormProgram(), { params: this.params });
  }

  /** Remove from W_dec's gradient its component along each decoder row (in place). */
  async removeGradientParallelToDecoderDirections(): Promise<void> {
    this.requireDecoder('removeGradientParallelToDecoderDirections');
    await runProgram(programs.removeParallelGradProgram(), { params: this.params });
  }

  /** One parameter tensor by its file name ('encoder.weight', 'W_dec', ...). */
  async parameter(name: string): Promise<Tensor> {
    return bundleGet(this.params, name);
  }

  /**
   * Write `cfg.json` and `sae.safetensors` into `dir` (created if needed), each file
   * atomically, in exactly the reference's layout.
   */
  async saveToDisk(dir: string): Promise<void> {
    await writeCoderDir(dir, this.cfg, this.dIn, this.params);
  }

  /** Load a coder directory; its dtype is the one found in the file. */
  static async loadFromDisk(dir: string, options: LoadOptions = {}): Promise<SparseCoder> {
    const decoder = options.decoder ?? true;
    const device = options.device ?? 'cpu';
    const { cfg, dIn } = readCoderConfig(dir);
    (await getRuntime()).checkDevice(device);
    const { dtype, names } = await checkWeights(dir, cfg, dIn, decoder);
    // Parameters require grad; buffers (a learned threshold) do not.
    const trained = new Set<string>(paramNames(structureOf(cfg)));
    const params = await loadTensors(join(dir, WEIGHTS_FILE), { device, names, requiresGrad: names.filter((n) => trained.has(n)) });
    return new SparseCoder(cfg, dIn, params, device, dtype, decoder);
  }

  /**
   * Load every coder under a directory (or Hub repo), keyed by sub-directory name in
   * natural order (layers.2 before layers.10).
   */
  static async loadMany(nameOrPath: string, options: LoadManyOptions = {}): Promise<Map<string, SparseCoder>> {
    if (options.layers && options.pattern) throw new ConfigError(`loadMany: give layers or pattern, not both`);
    const path = options.local ? nameOrPath : localPath(nameOrPath, 'loadMany');
    let root = path ?? nameOrPath;
    if (path === undefined && !options.local) {
      root = await downloadCoderFiles(nameOrPath, { ...options, subdirPattern: options.pattern ?? '*' });
    }
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new SparsifyError(`${root}: no such directory`);
    // Coder directories below the root (a sweep's `hookpoint/configuration`, several seeds'
    // `.../seedN` too); a pattern or layer list matches a name or its hookpoint.
    const match = options.pattern ? fnmatcher(options.pattern) : () => true;
    const hookpoint = (name: string): string => name.split('/')[0]!;
    const wanted = options.layers ? new Set(options.layers) : undefined;
    const entries = findCoderDirs(root).filter((e) => (!wanted || wanted.has(e.name) || wanted.has(hookpoint(e.name))) && (match(e.name) || match(hookpoint(e.name))));
    if (wanted) {
      const missing = [...wanted].filter((n) => !entries.some((e) => e.name === n || hookpoint(e.name) === n));
      if (missing.length) throw new SparsifyError(`${root}: no coder for ${missing.join(', ')} (found: ${findCoderDirs(root).map((e) => e.name).join(', ') || 'none'})`);
    }
    if (entries.length === 0) throw new SparsifyError(noCodersMessage(nameOrPath, options.pattern ? [options.pattern] : []));
    const out = new Map<string, SparseCoder>();
    for (const e of entries) out.set(e.name, await SparseCoder.loadFromDisk(e.path, options));
    return out;
  }

  /**
   * Download a coder from the Hugging Face Hub (only `hookpoint/*`) and load it. Files
   * already in the cache are not downloaded again.
   */
  static async loadFromHub(repo: string, options: LoadFromHubOptions = {}): Promise<SparseCoder> {
    const dir = await downloadCoderFiles(repo, { ...options, hookpoint: options.hookpoint });
    return SparseCoder.loadFromDisk(dir, options);
  }
}

/** The reference's other name for {@link SparseCoder}. */
export const Sae = SparseCoder;
export type Sae = SparseCoder;
