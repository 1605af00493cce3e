/**
 * The runtime's ops as typed functions, one per op, and the handles they take and return.
 * This is the only module that names ops: each function owns its op's request (camelCase
 * here, snake_case on the wire) and reply types. Tensors and other Python objects stay in
 * the runtime; JS holds {@link PyObject} handles to them, freed when garbage-collected.
 *
 * Every function makes one bridge round trip. Those that take no handle run in the shared
 * runtime ({@link getRuntime}) unless given another.
 */
import { PythonProcessError } from './errors.js';
import { getRuntime, type Runtime, type RuntimeInfo } from './runtime.js';
import type { WireHandle } from './wire.js';
import { OPS, type BenchOpName, type OpArgs, type OpName, type OpReply } from './contract.js';

// ================================================================ handles

/** Tensor element types the runtime knows. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'uint8' | 'bool';

/** A Python object kept in the runtime; it is freed when this object is garbage-collected or {@link PyObject.free}d. */
export class PyObject {
  /** @internal */
  constructor(
    readonly runtime: Runtime,
    readonly id: number,
    readonly kind: string,
  ) {
    runtime.track(this, id);
  }

  toJSON(): { $h: number } {
    return { $h: this.id };
  }

  /** Release the Python object now (it is freed with the next bridge call). */
  free(): void {
    this.runtime.untrack(this);
    this.runtime.release(this.id);
  }
}

/** Array data read back from a tensor: float16/bfloat16 arrive widened to float32. */
export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Uint8Array;

/**
 * A torch tensor living in the Python runtime.
 *
 * @example
 * const t = await Tensor.fromArray(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * console.log(t.shape, await t.toArray());
 */
export class Tensor extends PyObject {
  /** @internal */
  constructor(
    runtime: Runtime,
    id: number,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly device: string,
  ) {
    super(runtime, id, 'tensor');
  }

  /** The number of elements. */
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Copy the data to JS (one bridge call). */
  async toArray(): Promise<TensorData> {
    const reply = await (invoke(this.runtime, 'tensor.to_bytes', { tensor: this }) as Promise<{ data: string; dtype: keyof typeof ARRAY_TYPES }>);
    const bytes = Buffer.from(reply.data, 'base64');
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    return new ARRAY_TYPES[reply.dtype](buffer);
  }

  /**
   * The data as plain numbers (int64 included, which `toArray` gives as bigints); a
   * RangeError when an integer is beyond what a JS number holds exactly (2^53).
   */
  async toNumbers(): Promise<number[]> {
    const data = await this.toArray();
    if (!(data instanceof BigInt64Array)) return Array.from(data);
    return Array.from(data, (v) => {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new RangeError(`toNumbers(): ${v} is beyond 2^53; use toArray() for bigints`);
      return Number(v);
    });
  }

  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    const data = await this.toArray();
    if (data.length !== 1) throw new RangeError(`item() needs a one-element tensor, this one has shape [${this.shape.join(', ')}]`);
    return Number(data[0]);
  }

  /** The gradient accumulated on this (leaf) tensor, or null. */
  async grad(): Promise<Tensor | null> {
    return (invoke(this.runtime, 'tensor.grad', { tensor: this }) as Promise<Tensor | null>);
  }

  /** Make a tensor from JS data (one bridge call). */
  static async fromArray(
    data: ArrayLike<number> | TensorData,
    shape: readonly number[],
    options: { dtype?: DType; device?: string; requiresGrad?: boolean; runtime?: Runtime } = {},
  ): Promise<Tensor> {
    const dtype = options.dtype ?? 'float32';
    const expected = shape.reduce((a, b) => a * b, 1);
    if (data.length !== expected) {
      throw new RangeError(`data has ${data.length} elements but shape [${shape.join(', ')}] needs ${expected}`);
    }
    const array = toTypedArray(data, dtype);
    return (invoke(options.runtime, 'tensor.from_bytes', {
      data: Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64'),
      shape,
      // No JS typed array holds 16-bit floats: they travel as float32.
      dtype: dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype,
      device: options.device ?? 'cpu',
      requires_grad: options.requiresGrad ?? false,
    }) as Promise<Tensor>);
  }
}

const ARRAY_TYPES: Record<Exclude<DType, 'bfloat16'>, new (b: ArrayBuffer) => TensorData> = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  uint8: Uint8Array,
  bool: Uint8Array,
  float16: Float32Array,
};

function toTypedArray(data: ArrayLike<number> | TensorData, dtype: DType): TensorData {
  switch (dtype) {
    case 'float64':
      return Float64Array.from(data as ArrayLike<number>);
    case 'int64':
      return data instanceof BigInt64Array ? data : BigInt64Array.from(Array.from(data as ArrayLike<number>, (v) => BigInt(Math.trunc(v))));
    case 'int32':
      return Int32Array.from(data as ArrayLike<number>);
    case 'int16':
      return Int16Array.from(data as ArrayLike<number>);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(data as ArrayLike<number>);
    default:
      return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
  }
}

/** A handle in a reply, as the JS object that stands for it. */
function adopt(runtime: Runtime, h: WireHandle): PyObject {
  if (h.kind === 'tensor') return new Tensor(runtime, h.$h, h.shape ?? [], (h.dtype ?? 'float32') as DType, h.device ?? 'cpu');
  return new PyObject(runtime, h.$h, h.kind);
}

/** The runtime that holds the handles among `args` (at any depth), if any; all must share one. */
export function runtimeOfHandles(args: unknown): Runtime | undefined {
  let found: Runtime | undefined;
  const visit = (v: unknown): void => {
    if (v instanceof PyObject) {
      if (found && found !== v.runtime) throw new PythonProcessError('this call mixes objects of two Python runtimes (one was closed and a new one started); load or create them again in the current one');
      found = v.runtime;
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach(visit);
  };
  visit(args);
  return found;
}

/** Replies are checked against the contract's schemas under the test harness. */
const checkReplies = process.env.SPARSIFY_TESTING === '1';

/**
 * One op call: in `rt`, else in the runtime holding the handles it is given (so an object of
 * a closed runtime fails plainly rather than reading another object in a new one), else in
 * the shared runtime. The arguments are exactly the op's in the contract (contract.ts).
 */
async function invoke<N extends OpName>(rt: Runtime | undefined, op: N, args: OpArgs<N>): Promise<unknown> {
  const runtime = rt ?? runtimeOfHandles(args) ?? (await getRuntime());
  const reply = await runtime.call(op, args, (h) => adopt(runtime, h));
  if (checkReplies) {
    const checked = OPS[op].reply.safeParse(reply);
    if (!checked.success) throw new TypeError(`runtime op ${op}: the reply does not match the bridge contract (${checked.error.issues[0]?.path.join('.')}: ${checked.error.issues[0]?.message})`);
  }
  return reply;
}

// ================================================================ runtime

/**
 * How the runtime works: the Hugging Face libraries' own progress bars (weight loading,
 * dataset maps, downloads) are off unless turned on here, and torch's float32 matmul
 * precision ('high' lets GPUs use TF32; `runtime.configure`).
 */
export async function runtimeConfigure(settings: { progressBars?: boolean; matmulPrecision?: 'highest' | 'high' | 'medium' }, rt?: Runtime): Promise<void> {
  await invoke(rt, 'runtime.configure', { progress_bars: settings.progressBars ?? null, matmul_precision: settings.matmulPrecision ?? null });
}

/** The runtime's Python, torch and devices (`runtime.info`). */
export function runtimeInfo(rt?: Runtime): Promise<RuntimeInfo> {
  return (invoke(rt, 'runtime.info', {}) as Promise<RuntimeInfo>);
}

// ================================================================ bundles (dicts of tensors)

/** One tensor of a bundle, by name (`bundle.get`). */
export function bundleGet(bundle: PyObject, name: string): Promise<Tensor> {
  return (invoke(bundle.runtime, 'bundle.get', { bundle, name }) as Promise<Tensor>);
}

/** Copy `src`'s tensors into `dst`'s tensors of the same names (`names`, or all of dst's), in place; each must be in src (`bundle.copy_into`). */
export async function bundleCopyInto(dst: PyObject, src: PyObject, names?: readonly string[]): Promise<void> {
  await invoke(dst.runtime, 'bundle.copy_into', { dst, src, names: names ? [...names] : null });
}

/** Set `dst`'s entries to `src`'s tensors, replacing or adding (`bundle.update`). */
export async function bundleUpdate(dst: PyObject, src: PyObject): Promise<void> {
  await invoke(dst.runtime, 'bundle.update', { dst, src });
}

// ================================================================ programs

/** Compile generated Python source once; returns its id (a content hash) for {@link programRun} (`program.compile`). */
export function programCompile(source: string, entry: string, compile: boolean, rt?: Runtime): Promise<string> {
  return (invoke(rt, 'program.compile', { source, entry, compile }) as Promise<string>);
}

/** Drop the zero matrices generated programs keep for reuse (`program.release_scratch`), e.g. when training ends. */
export async function programReleaseScratch(rt?: Runtime): Promise<void> {
  await invoke(rt, 'program.release_scratch', {});
}

/** Run a compiled program with its arguments by input name (`program.run`). */
export function programRun<R>(id: string, args: Record<string, unknown>, rt?: Runtime): Promise<R> {
  return (invoke(rt, 'program.run', { id, args }) as Promise<R>);
}

// ================================================================ models and tokenizers

export interface ModelLoadRequest {
  nameOrPath: string;
  /** 'base' (AutoModel) or 'causal_lm' (AutoModelForCausalLM). */
  kind: 'base' | 'causal_lm';
  device: string;
  /** A dtype name, or 'auto' (bf16 where the GPU supports it, else float32). */
  dtype: string;
  revision?: string | undefined;
  token?: string | undefined;
  loadIn8bit?: boolean | undefined;
  /** From the Hugging Face cache only (the Hub cannot be reached). */
  localFilesOnly?: boolean | undefined;
}

/** Load a Hugging Face model in eval mode with frozen weights (`model.load`). */
export function modelLoad(req: ModelLoadRequest, rt?: Runtime): Promise<PyObject> {
  return (invoke(rt, 'model.load', {
    name_or_path: req.nameOrPath,
    kind: req.kind,
    device: req.device,
    dtype: req.dtype,
    revision: req.revision ?? null,
    token: req.token ?? null,
    load_in_8bit: req.loadIn8bit ?? false,
    local_files_only: req.localFilesOnly ?? false,
  }) as Promise<PyObject>);
}

/** What a model's config and weights say about it. */
export interface ModelConfigInfo {
  modelType: string | null;
  hiddenSize: number | null;
  numHiddenLayers: number | null;
  vocabSize: number | null;
  /** A language-model head whose weights were loaded (ce/kl need it). */
  lmHead: boolean;
  /** BOS, EOS and pad ids from the model's config. */
  specialTokenIds: number[];
  /** Where generation stops (the generation config's EOS ids, else the config's). */
  eosTokenIds: number[];
  /** The longest sequence its position embeddings cover (null: its config states none). */
  maxPositions: number | null;
  dtype: string;
  device: string;
}

/** The model's config (`model.config`). */
export async function modelConfig(model: PyObject): Promise<ModelConfigInfo> {
  const r = await (invoke(model.runtime, 'model.config', { model }) as Promise<{
    model_type: string | null;
    hidden_size: number | null;
    num_hidden_layers: number | null;
    vocab_size: number | null;
    lm_head: boolean;
    special_token_ids: number[];
    eos_token_ids: number[];
    max_positions: number | null;
    dtype: string;
    device: string;
  }>);
  return {
    modelType: r.model_type,
    hiddenSize: r.hidden_size,
    numHiddenLayers: r.num_hidden_layers,
    vocabSize: r.vocab_size,
    lmHead: r.lm_head,
    specialTokenIds: r.special_token_ids,
    eosTokenIds: r.eos_token_ids,
    maxPositions: r.max_positions,
    dtype: r.dtype,
    device: r.device,
  };
}

/** A submodule of the base model. */
export interface ModuleInfo {
  name: string;
  type: string;
  /** Set for ModuleLists. */
  length?: number;
}

/** Every submodule of the base model, in definition order (`model.modules`). */
export function modelModules(model: PyObject): Promise<ModuleInfo[]> {
  return (invoke(model.runtime, 'model.modules', { model }) as Promise<ModuleInfo[]>);
}

/** Output and input widths of a module (input null when its first input is not a float tensor). */
export interface HookWidth {
  output: number;
  input: number | null;
}

/** Widths of the named modules, from one dummy forward pass with hooks (`model.hook_widths`). */
export function hookWidths(model: PyObject, names: readonly string[]): Promise<Record<string, HookWidth>> {
  return (invoke(model.runtime, 'model.hook_widths', { model, names }) as Promise<Record<string, HookWidth>>);
}

/** The unembedding [vocab, hidden] of a model with a loaded language-model head, else null (`model.output_embeddings`). */
export function outputEmbeddings(model: PyObject): Promise<Tensor | null> {
  return (invoke(model.runtime, 'model.output_embeddings', { model }) as Promise<Tensor | null>);
}

/** Hidden states of every layer (embedding output first), each flattened to [tokens, D] (`model.hidden_states`). */
export function hiddenStates(model: PyObject, inputIds: Tensor): Promise<Tensor[]> {
  return (invoke(model.runtime, 'model.hidden_states', { model, input_ids: inputIds }) as Promise<Tensor[]>);
}

/** Load a model's tokenizer (`tokenizer.load`). */
export function tokenizerLoad(nameOrPath: string, options: { revision?: string | undefined; token?: string | undefined; localFilesOnly?: boolean | undefined } = {}, rt?: Runtime): Promise<PyObject> {
  return invoke(rt, 'tokenizer.load', { name_or_path: nameOrPath, revision: options.revision ?? null, token: options.token ?? null, local_files_only: options.localFilesOnly ?? false }) as Promise<PyObject>;
}

/** The ids of a tokenizer's special tokens (`tokenizer.special_ids`). */
export function tokenizerSpecialIds(tokenizer: PyObject): Promise<number[]> {
  return (invoke(tokenizer.runtime, 'tokenizer.special_ids', { tokenizer }) as Promise<number[]>);
}

/** The text of each token id (`tokenizer.decode_ids`). */
export function tokenizerDecodeIds(tokenizer: PyObject, ids: readonly number[]): Promise<string[]> {
  return (invoke(tokenizer.runtime, 'tokenizer.decode_ids', { tokenizer, ids }) as Promise<string[]>);
}

/** Each id's raw bytes as hex where the tokenizer says what they are (byte-level BPE, byte fallback), else null (`tokenizer.token_bytes`). */
/** A sequence of ids as one text. */
export function tokenizerDecode(tokenizer: PyObject, ids: readonly number[]): Promise<string> {
  return invoke(tokenizer.runtime, 'tokenizer.decode', { tokenizer, ids }) as Promise<string>;
}

export function tokenizerTokenBytes(tokenizer: PyObject, ids: readonly number[]): Promise<(string | null)[]> {
  return (invoke(tokenizer.runtime, 'tokenizer.token_bytes', { tokenizer, ids }) as Promise<(string | null)[]>);
}

/** Token ids (and attention mask) of a text, [1, T] (`tokenizer.encode`). */
export function tokenize(tokenizer: PyObject, text: string, device: string): Promise<{ input_ids: Tensor; attention_mask: Tensor }> {
  return invoke(tokenizer.runtime, 'tokenizer.encode', { tokenizer, text, device }) as Promise<{ input_ids: Tensor; attention_mask: Tensor }>;
}

// ================================================================ data

/** Where to load a tokenizer from, when it is needed. */
export interface TokenizerSource {
  nameOrPath: string;
  revision?: string | undefined;
  token?: string | undefined;
  /** From the Hugging Face cache only. */
  localFilesOnly?: boolean | undefined;
}

export interface DataLoadRequest {
  nameOrPath: string;
  split: string;
  dataArgs: Record<string, string | number | boolean>;
  /** Needed when the data is text (no input_ids column): a tokenizer, or where to load one (only then). */
  tokenizer: PyObject | TokenizerSource | null;
  ctxLen: number;
  textColumn: string;
  numProc: number;
  shuffleSeed: number;
  maxExamples: number | null;
  /** Check a token file's ids against this vocabulary size. */
  vocabSize?: number | undefined;
  /** A Hub dataset from the cache only (the Hub cannot be reached). */
  offline?: boolean | undefined;
}

/** One shard of cached activations: its file and its rows [start, end). */
export interface ActivationShard {
  path: string;
  start: number;
  end: number;
}

/**
 * A reader over cached activation shards (`activation_cache.open`): it stands in for the model
 * and the rows in `hooksRun`, memory-mapping each shard and asking the OS for the next.
 */
export function activationCacheOpen(shards: readonly ActivationShard[], ctxLen: number, device: string, rt?: Runtime): Promise<PyObject> {
  return (invoke(rt, 'activation_cache.open', { shards, ctx_len: ctxLen, device }) as Promise<PyObject>);
}

/** Seconds a reader has spent reading, converting and moving activations (`activation_cache.stats`). */
export function activationCacheStats(reader: PyObject): Promise<{ seconds: number }> {
  return (invoke(reader.runtime, 'activation_cache.stats', { reader }) as Promise<{ seconds: number }>);
}

/** Rows [start, end) of a loaded dataset's token ids, as an int32 tensor on the CPU (`data.rows`). */
export function dataRows(rows: PyObject, start: number, end: number): Promise<Tensor> {
  return (invoke(rows.runtime, 'data.rows', { rows, start, end }) as Promise<Tensor>);
}

/** Load and prepare a dataset as rows of token ids (`data.load`). */
export async function dataLoad(req: DataLoadRequest, rt?: Runtime): Promise<{ rows: PyObject; numRows: number; ctxLen: number }> {
  const r = await (invoke(rt, 'data.load', {
    name_or_path: req.nameOrPath,
    split: req.split,
    data_args: req.dataArgs,
    tokenizer:
      req.tokenizer === null || req.tokenizer instanceof PyObject
        ? req.tokenizer
        : { name_or_path: req.tokenizer.nameOrPath, revision: req.tokenizer.revision ?? null, token: req.tokenizer.token ?? null, local_files_only: req.tokenizer.localFilesOnly ?? false },
    ctx_len: req.ctxLen,
    text_column: req.textColumn,
    num_proc: req.numProc,
    shuffle_seed: req.shuffleSeed,
    max_examples: req.maxExamples,
    vocab_size: req.vocabSize ?? null,
    offline: req.offline ?? false,
  }) as Promise<{ rows: PyObject; num_rows: number; ctx_len: number }>);
  return { rows: r.rows, numRows: r.num_rows, ctxLen: r.ctx_len };
}

// ================================================================ hooks: the training step

/**
 * A compiled program run in a module's forward hook. It gets (inputs, outputs, mask, context,
 * ...args) and returns metrics, `keep` (tensors for the batch's context) and, when it
 * replaces the module's output, `output`.
 */
export interface HookSpec {
  /** Names its metrics in the reply. */
  key: string;
  /** The module to hook (a name under the base model). */
  module: string;
  /** Program id, or null for a hook that only takes part in the all-gather of its module. */
  program: string | null;
  /** The program's arguments besides (inputs, outputs, mask). */
  args: Record<string, unknown>;
  /** The program's `output` replaces the module's output. */
  replace?: boolean;
  /** The module returns its input instead of running (transcoders replacing it). */
  identity?: boolean;
  /** The hook sees inputs, outputs and mask concatenated from every rank. */
  gather?: boolean;
}

/** A compiled program run once after the batches (the optimizer step). */
export interface AfterSpec {
  key: string;
  program: string;
  args: Record<string, unknown>;
}

/** A compiled program on a pass's logits: it gets (logits, input_ids, mask, context, ...args). */
export interface LogitsSpec {
  key: string;
  program: string;
  args: Record<string, unknown>;
}

/**
 * One forward pass over a batch: its hooks and, optionally, a program on the logits (without
 * one the base model runs, no LM head). The passes of a batch share its token mask and a
 * context where programs keep tensors for the passes after them.
 */
export interface PassSpec {
  hooks: readonly HookSpec[];
  logits?: LogitsSpec | null;
  /** Record autograd in this pass (end-to-end training). */
  grad?: boolean;
}

/** One batch's rows: a range [start, end), or rows in any order. */
export type BatchRows = readonly [number, number] | { readonly rows: readonly number[] };

export interface HooksRunRequest {
  /** A model, or an activation reader (`activationCacheOpen`): then the hooks' programs run on its cached tensors. */
  model: PyObject;
  rows: PyObject;
  /** Row ranges [start, end) of `rows`, or rows in any order (a shuffled epoch); several for gradient accumulation. */
  batches: readonly BatchRows[];
  /** The forward passes each batch goes through, in order. */
  passes: readonly PassSpec[];
  device: string;
  /** Token ids whose positions the mask leaves out. */
  excludeTokens?: readonly number[];
  after?: readonly AfterSpec[];
  /** Across ranks: 'mean' averages the metrics (data parallel), 'merge' takes each from its owner. */
  reduceMetrics?: 'mean' | 'merge' | null;
  /** This rank wants to stop; the ranks agree through the metric exchange. */
  stop?: boolean;
  /** Token ids must be below this (the model's vocabulary size). */
  vocabSize?: number | undefined;
}

/** What one step reports. */
export interface HooksRunReply {
  /** Metric sums over the batches, by program key. */
  metrics: Record<string, Record<string, number>>;
  /** Tokens in the batches (this rank). */
  tokens: number;
  /** Some rank asked to stop. */
  stop: boolean;
  /** Seconds of Python compute. */
  seconds: number;
}

/**
 * Run each batch through the passes (hooks calling programs on the named modules, programs on
 * the logits), then the `after` programs; metrics come back as floats, read with one device
 * sync (`hooks.run`).
 */
export function hooksRun(req: HooksRunRequest): Promise<HooksRunReply> {
  return (invoke(req.model.runtime, 'hooks.run', {
    model: req.model,
    rows: req.rows,
    batches: req.batches,
    passes: req.passes.map((p) => ({ hooks: p.hooks, logits: p.logits ?? null, grad: p.grad ?? false })),
    device: req.device,
    exclude_tokens: req.excludeTokens ?? [],
    after: req.after ?? [],
    reduce_metrics: req.reduceMetrics ?? null,
    stop: req.stop ?? false,
    vocab_size: req.vocabSize ?? null,
  }) as Promise<HooksRunReply>);
}

/** One forward over token ids already in the runtime: the passes' hooks and logits programs, every token kept. */
export interface HooksForwardRequest {
  model: PyObject;
  /** [batch, tokens] int64. */
  inputIds: Tensor;
  passes: readonly PassSpec[];
  /** Context entries (what the programs kept) to hand back, as handles. */
  keep?: readonly string[];
}

export interface HooksForwardReply {
  metrics: Record<string, Record<string, number>>;
  keep: Record<string, unknown>;
}

/** The passes of `hooksRun` over one batch of token ids (a prompt, a sequence being generated): one bridge call (`hooks.forward`). */
export function hooksForward(req: HooksForwardRequest): Promise<HooksForwardReply> {
  return invoke(req.model.runtime, 'hooks.forward', {
    model: req.model,
    input_ids: req.inputIds,
    passes: req.passes.map((p) => ({ hooks: p.hooks, logits: p.logits ?? null, grad: p.grad ?? false })),
    keep: req.keep ?? [],
  }) as Promise<HooksForwardReply>;
}

// ================================================================ safetensors files and trainer state

/** Names, shapes and dtypes in a safetensors file, and its metadata. */
export interface SafetensorsHeader {
  tensors: Record<string, { shape: number[]; dtype: DType }>;
  metadata: Record<string, string>;
}

/** Read a safetensors header, checking that the file is whole (`safetensors.header`). */
export function safetensorsHeader(path: string, rt?: Runtime): Promise<SafetensorsHeader> {
  return (invoke(rt, 'safetensors.header', { path }) as Promise<SafetensorsHeader>);
}

/**
 * The tensors of a safetensors file (`names`, or all); floating ones require grad where
 * `requiresGrad` is true or names them. `narrow` reads only a range of some along one dim
 * (`{ W_dec: [1, 2, 1] }`: W_dec[:, 2:3]), the rest never read.
 */
export function loadTensors(path: string, options: { device: string; names?: readonly string[]; requiresGrad?: boolean | readonly string[]; narrow?: Record<string, [dim: number, start: number, length: number]> }, rt?: Runtime): Promise<PyObject> {
  return (invoke(rt, 'safetensors.load', { path, device: options.device, names: options.names ?? null, requires_grad: typeof options.requiresGrad === 'object' ? [...options.requiresGrad] : (options.requiresGrad ?? false), narrow: options.narrow ?? null }) as Promise<PyObject>);
}

/** Write a bundle to a safetensors file atomically: temp file, fsync, rename (`safetensors.save`). */
export async function saveTensors(path: string, tensors: PyObject | Record<string, Tensor>, metadata: Record<string, string> = {}): Promise<void> {
  await invoke(tensors instanceof PyObject ? tensors.runtime : runtimeOfHandles(tensors), 'safetensors.save', { path, tensors, metadata });
}

/** Write groups of bundles into one safetensors file (`group::name` keys), atomically (`state.save`). */
export async function saveState(path: string, groups: Record<string, PyObject>, rt?: Runtime): Promise<void> {
  await invoke(rt, 'state.save', { path, groups });
}

/** Read a file written by {@link saveState} back into its groups (`state.load`). */
export function loadState(path: string, device: string, rt?: Runtime): Promise<Record<string, PyObject>> {
  return (invoke(rt, 'state.load', { path, device }) as Promise<Record<string, PyObject>>);
}

// ================================================================ Weights & Biases

/** Start a wandb run; ok false (with why; `missing` when wandb is not installed) when it cannot start (`wandb.init`). */
export function wandbInit(project: string, name: string | null, config: Record<string, unknown>, rt?: Runtime): Promise<{ ok: boolean; reason?: string; missing?: boolean; url?: string | null }> {
  return invoke(rt, 'wandb.init', { project, name, config }) as Promise<{ ok: boolean; reason?: string; missing?: boolean; url?: string | null }>;
}

/** Log metrics at a step of the current wandb run (`wandb.log`). */
export async function wandbLog(metrics: Record<string, unknown>, step: number, rt?: Runtime): Promise<void> {
  await invoke(rt, 'wandb.log', { metrics, step });
}

/** Finish the current wandb run (`wandb.finish`). */
export async function wandbFinish(rt?: Runtime): Promise<void> {
  await invoke(rt, 'wandb.finish', {});
}

// ================================================================ torch.distributed

/** Where this process stands in a torchrun launch. */
export interface DistInfo {
  rank: number;
  worldSize: number;
  localRank: number;
  backend: 'nccl' | 'gloo';
  device: string;
}

/** Join the process group torchrun describes in the environment: NCCL on GPU, gloo on CPU (`dist.init`). */
export async function distInit(rt?: Runtime): Promise<DistInfo> {
  const r = await (invoke(rt, 'dist.init', {}) as Promise<{ rank: number; world_size: number; local_rank: number; backend: 'nccl' | 'gloo'; device: string }>);
  return { rank: r.rank, worldSize: r.world_size, localRank: r.local_rank, backend: r.backend, device: r.device };
}

/** How long collectives wait for the other ranks from now on (`dist.set_timeout`; a no-op when not distributed). */
export async function distSetTimeout(seconds: number, rt?: Runtime): Promise<void> {
  await invoke(rt, 'dist.set_timeout', { timeout_s: seconds });
}

/** Wait for every rank (`dist.barrier`; a no-op when not distributed). */
export async function distBarrier(rt?: Runtime): Promise<void> {
  await invoke(rt, 'dist.barrier', {});
}

// ================================================================ test ops
// Registered only in a runtime started by the test harness (SPARSIFY_TESTING=1 in the environment).

/** Run Python `code` with `env` bound; returns its `result` variable (`testing.eval`). */
export function evalPython<T = unknown>(code: string, env: Record<string, unknown> = {}, rt?: Runtime): Promise<T> {
  return (invoke(rt, 'testing.eval', { code, env }) as Promise<T>);
}

/** Keep the runtime busy for `seconds` (`testing.sleep`). */
export async function sleepInPython(seconds: number, rt?: Runtime): Promise<void> {
  await invoke(rt, 'testing.sleep', { seconds });
}

// ================================================================ benchmark ops
// Registered only when the runtime loads python/bench/bench_ops.py (the benchmark driver
// names it in SPARSIFY_RUNTIME_EXTENSIONS before the runtime starts).

/** A `bench.*` op (see python/bench/bench_ops.py). */
export async function benchOp<N extends BenchOpName>(op: N, args: OpArgs<N>, rt?: Runtime): Promise<OpReply<N>> {
  return (await invoke(rt, op, args)) as OpReply<N>;
}
