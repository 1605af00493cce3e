/**
 * The bridge's contract: every runtime op TypeScript calls, with the keyword arguments it
 * sends (snake_case, the Python functions' parameter names) and the shape of its reply.
 * ops.ts calls ops only through this table (the compiler checks each call's argument names
 * against it); test/bridge/contract.test.ts checks it against the Python op functions
 * (`inspect.signature`), and under the test harness every reply is checked against its
 * schema. Handles arrive as the objects ops.ts makes of them.
 */
import { z } from 'zod';

/** A handle the runtime returned (a Tensor or other PyObject, already adopted). */
const handle = z.custom<object>((v) => typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'number' && typeof (v as { kind?: unknown }).kind === 'string', 'a handle');
const none = z.null();
const int = z.number().int();

const hookWidth = z.object({ output: int, input: int.nullable() });

/** Each op: its keyword arguments, and its reply. */
export const OPS = {
  'activation_cache.open': { args: ['shards', 'ctx_len', 'device'], reply: handle },
  'activation_cache.stats': { args: ['reader'], reply: z.object({ seconds: z.number() }) },
  'bundle.copy_into': { args: ['dst', 'src', 'names'], reply: none },
  'bundle.get': { args: ['bundle', 'name'], reply: handle },
  'bundle.update': { args: ['dst', 'src'], reply: none },
  'data.load': {
    args: ['name_or_path', 'split', 'data_args', 'tokenizer', 'ctx_len', 'text_column', 'num_proc', 'shuffle_seed', 'max_examples', 'vocab_size', 'offline'],
    reply: z.object({ rows: handle, num_rows: int, ctx_len: int }),
  },
  'data.rows': { args: ['rows', 'start', 'end'], reply: handle },
  'dist.barrier': { args: [], reply: none },
  'dist.set_timeout': { args: ['timeout_s'], reply: none },
  'dist.init': { args: [], reply: z.object({ rank: int, world_size: int, local_rank: int, backend: z.enum(['nccl', 'gloo']), device: z.string() }) },
  'hooks.forward': { args: ['model', 'input_ids', 'passes', 'keep'], reply: z.object({ metrics: z.record(z.string(), z.record(z.string(), z.number())), keep: z.record(z.string(), z.unknown()) }) },
  'hooks.run': {
    args: ['model', 'rows', 'batches', 'passes', 'device', 'exclude_tokens', 'after', 'reduce_metrics', 'stop', 'vocab_size'],
    reply: z.object({ metrics: z.record(z.string(), z.record(z.string(), z.number())), tokens: int, stop: z.boolean(), seconds: z.number() }),
  },
  'model.config': {
    args: ['model'],
    reply: z.object({
      model_type: z.string().nullable(),
      hidden_size: int.nullable(),
      num_hidden_layers: int.nullable(),
      vocab_size: int.nullable(),
      lm_head: z.boolean(),
      special_token_ids: z.array(int),
      eos_token_ids: z.array(int),
      max_positions: int.nullable(),
      dtype: z.string(),
      device: z.string(),
    }),
  },
  'model.hidden_states': { args: ['model', 'input_ids'], reply: z.array(handle) },
  'model.hook_widths': { args: ['model', 'names'], reply: z.record(z.string(), hookWidth) },
  'model.load': { args: ['name_or_path', 'kind', 'device', 'dtype', 'revision', 'token', 'load_in_8bit', 'local_files_only'], reply: handle },
  'model.modules': { args: ['model'], reply: z.array(z.object({ name: z.string(), type: z.string(), length: int.optional() })) },
  'model.output_embeddings': { args: ['model'], reply: handle.nullable() },
  'program.compile': { args: ['source', 'entry', 'compile'], reply: z.string() },
  'program.release_scratch': { args: [], reply: none },
  'program.run': { args: ['id', 'args'], reply: z.record(z.string(), z.unknown()) },
  'runtime.configure': { args: ['progress_bars', 'matmul_precision'], reply: z.record(z.string(), z.unknown()) },
  'runtime.info': {
    args: [],
    reply: z.object({ python: z.string(), executable: z.string(), torch: z.string(), cuda: z.boolean(), device_count: int, bf16: z.boolean() }).loose(),
  },
  'safetensors.header': {
    args: ['path'],
    reply: z.object({ tensors: z.record(z.string(), z.object({ shape: z.array(int), dtype: z.string() })), metadata: z.record(z.string(), z.string()) }),
  },
  'safetensors.load': { args: ['path', 'device', 'names', 'requires_grad', 'narrow'], reply: handle },
  'safetensors.save': { args: ['path', 'tensors', 'metadata'], reply: none },
  'state.load': { args: ['path', 'device'], reply: z.record(z.string(), handle) },
  'state.save': { args: ['path', 'groups'], reply: none },
  'tensor.from_bytes': { args: ['data', 'shape', 'dtype', 'device', 'requires_grad'], reply: handle },
  'tensor.grad': { args: ['tensor'], reply: handle.nullable() },
  'tensor.to_bytes': { args: ['tensor'], reply: z.object({ data: z.string(), dtype: z.string() }) },
  'tokenizer.decode': { args: ['tokenizer', 'ids'], reply: z.string() },
  'tokenizer.decode_ids': { args: ['tokenizer', 'ids'], reply: z.array(z.string()) },
  'tokenizer.token_bytes': { args: ['tokenizer', 'ids'], reply: z.array(z.string().nullable()) },
  'tokenizer.encode': { args: ['tokenizer', 'text', 'device'], reply: z.object({ input_ids: handle, attention_mask: handle }) },
  'tokenizer.load': { args: ['name_or_path', 'revision', 'token', 'local_files_only'], reply: handle },
  'tokenizer.special_ids': { args: ['tokenizer'], reply: z.array(int) },
  'wandb.finish': { args: [], reply: none },
  'wandb.init': { args: ['project', 'name', 'config'], reply: z.object({ ok: z.boolean(), reason: z.string().optional(), missing: z.boolean().optional(), url: z.string().nullable().optional() }) },
  'wandb.log': { args: ['metrics', 'step'], reply: none },
  // Registered only in a runtime started by the test harness (SPARSIFY_TESTING=1).
  'testing.eval': { args: ['code', 'env'], reply: z.unknown() },
  'testing.sleep': { args: ['seconds'], reply: none },
  // Registered only when the benchmark driver loads python/bench/bench_ops.py.
  'bench.versions': { args: [], reply: z.string() },
  'bench.make_model': { args: ['model_dir', 'bin', 'vocab', 'hidden', 'layers', 'heads', 'inter', 'ctx', 'rows', 'low'], reply: none },
  'bench.randn': { args: ['n', 'd'], reply: handle },
  'bench.reference_coder': { args: ['params', 'k'], reply: handle },
  'bench.reference_step_ms': { args: ['coder', 'x'], reply: z.number() },
  'bench.eval_parts': { args: ['model', 'rows', 'start', 'end', 'batch', 'device', 'hookpoints', 'params'], reply: z.object({ forward: z.number(), coder: z.number() }) },
  'bench.repeat_tokens': { args: ['source', 'num_rows', 'need', 'bin'], reply: none },
  'bench.explore_parts': { args: ['model', 'rows', 'num_rows', 'batch', 'device', 'hookpoints', 'params'], reply: z.object({ forward: z.number(), encode: z.number() }) },
  'bench.synthetic_latent_cache': { args: ['d', 'm'], reply: none },
  'bench.profile_start': { args: [], reply: none },
  'bench.profile_stop': { args: ['trace'], reply: z.string().nullable() },
  'bench.time_ops': { args: ['model', 'tokens', 'd', 'm', 'k', 'batch', 'ctx', 'device'], reply: z.record(z.string(), z.number()) },
  'bench.cuda_reset_peak': { args: [], reply: none },
  'bench.cuda_peak_gib': { args: [], reply: z.number().nullable() },
} as const satisfies Record<string, { args: readonly string[]; reply: z.ZodType }>;

/** A runtime op's name. */
export type OpName = keyof typeof OPS;

/** The arguments of op `N`, by the names the Python function takes. */
export type OpArgs<N extends OpName> = { [K in (typeof OPS)[N]['args'][number]]: unknown };

/** What op `N` replies, as its schema reads it. */
export type OpReply<N extends OpName> = z.output<(typeof OPS)[N]['reply']>;

/** The ops of the benchmarks' extension (`bench.*`). */
export type BenchOpName = Extract<OpName, `bench.${string}`>;
