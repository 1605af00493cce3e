import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { ACTIVATIONS, activation } from '../activations/index.js';
import { DEFAULT_OPTIMIZER, OPTIMIZERS, OPTIMIZER_NAMES } from '../optimizers/index.js';
import { snakeCase } from '../util/case.js';
import { DataOptionsShape } from './data.js';
import { OutputOptionsShape } from './output.js';
import { ConfigError, parseWith } from './errors.js';
import { SparseCoderConfigSchema, coderConfigProblems, coderShapeProblem } from './sparse-coder.js';
import { crossLayerUnsupported } from '../coder/cross-layer.js';
import { SWEEPABLE, sweepVariants, type FieldSchemas, type Variant } from './sweep.js';

const intList = z.array(z.number().int());

/**
 * Training configuration (the reference's `TrainConfig`), camelCase in TS; the CLI spells
 * each field in snake_case (`--batch_size`). The coder's own options live under `sae`.
 */
export const TrainConfigObject = z
  .object({
    sae: SparseCoderConfigSchema.default(SparseCoderConfigSchema.parse({})).describe('Sparse coder options'),
    batchSize: z.number().int().positive().default(32).describe('Batch size measured in sequences'),
    gradAccSteps: z.number().int().positive().default(1).describe('Number of steps over which to accumulate gradients'),
    microAccSteps: z.number().int().positive().default(1).describe('Chunks to split each batch into for the coder forward/backward, to save memory'),
    lossFn: z.enum(['fvu', 'ce', 'kl']).default('fvu').describe('Loss: fvu (local reconstruction), ce or kl (end to end)'),
    // Its choices are listed by --help (each optimizer's file says what it is).
    optimizer: z.enum(OPTIMIZER_NAMES).default(DEFAULT_OPTIMIZER).describe('Optimizer'),
    lr: z.number().positive().optional().describe('Base learning rate; by default chosen from the number of latents'),
    lrWarmupSteps: z
      .number()
      .int()
      .nonnegative()
      .default(1000)
      .describe(`Linear warmup steps (${OPTIMIZERS.filter((o) => o.usesWarmup).map((o) => o.name).join(', ')})`),
    kDecaySteps: z.number().int().nonnegative().default(0).describe('Steps over which k decays linearly from 10*d_in to k'),
    auxkAlpha: z.number().nonnegative().default(0).describe('Weight of the auxiliary loss on dead latents'),
    auxkNoBias: z
      .boolean()
      .default(false)
      .describe('Leave b_dec out of the AuxK reconstruction of the residual (the corrected loss; the reference adds it, its issue #132)'),
    sparseBackward: z
      .enum(['auto', 'index_add', 'gemm', 'segment'])
      .default('auto')
      .describe(
        "How the encoder and decoder weight gradients are computed: index_add (the reference's kernels, bit-identical to it on CPU), gemm (the selected gradients scattered densely, then matrix products on tensor cores), segment (Triton kernels over the selected entries only: no [N, M] scratch; CUDA, needs triton), auto (gemm on CUDA, index_add elsewhere)",
      ),
    deadFeatureThreshold: z.number().int().nonnegative().default(10_000_000).describe('Tokens without firing after which a latent counts as dead'),
    l0Coefficient: z
      .number()
      .nonnegative()
      .optional()
      .describe('jumprelu: the weight of its L0 loss, coef * (L0 / target_l0 - 1)^2, or coef * L0 without a target (default: 1 with --target_l0, as dictionary_learning; 0.001 without)'),
    targetL0: z.number().positive().optional().describe('jumprelu: the mean number of active latents per token its L0 loss aims at (default: none, an L0 penalty)'),
    sparsityWarmupSteps: z
      .number()
      .int()
      .nonnegative()
      .default(2000)
      .describe("jumprelu: its L0 loss's weight rises linearly from 0 over this many optimizer steps, as dictionary_learning's"),
    thresholdStartStep: z
      .number()
      .int()
      .nonnegative()
      .default(1000)
      .describe('A learned inference threshold (inference_threshold) follows the batches after this many optimizer steps; the first value starts it'),
    thresholdBeta: z
      .number()
      .min(0)
      .max(1)
      .default(0.999)
      .describe('The learned inference threshold moves as theta <- beta * theta + (1 - beta) * (the batch\'s smallest kept activation)'),
    excludeTokens: intList.default([]).describe('Token ids whose positions are left out of training (default: none)'),
    hookpoints: z.array(z.string().min(1)).default([]).describe('Module name patterns to train on (fnmatch: *, ?, [seq], [!seq]) (default: the layers)'),
    initSeeds: intList.default([0]).describe('Seeds: one coder per seed and hookpoint'),
    epochs: z.number().int().positive().default(1).describe('Passes over the data; the first in the data\'s order, each later one in a new seeded order of the rows'),
    sweep: z
      .array(z.string().min(1))
      .default([])
      .describe(
        `Train every combination of these settings side by side from one model pass, each as its own coder (hookpoint/k64-ef16): "k=16,32" "expansion_factor=8,16" ..., a list as a:b:c or none ("matryoshka_prefixes=none,1024:4096") (sweepable: ${Object.keys(SWEEPABLE).join(', ')}) (default: none)`,
      ),
    layers: intList.default([]).describe('Layer indices to train on (default: all)'),
    layerStride: z.number().int().positive().default(1).describe('Train on every layer_stride-th hookpoint'),
    distributeModules: z.boolean().default(false).describe('Spread the hookpoints across ranks instead of replicating them'),
    crossLayer: z
      .boolean()
      .default(false)
      .describe("Train one cross-layer transcoder over the hookpoints (with --transcode, a contiguous run of layers' MLPs): each layer's latents also write to every later layer's output"),
    crossLayerLoss: z
      .enum(['fvu', 'mse'])
      .default('fvu')
      .describe("A cross-layer transcoder's reconstruction loss: fvu, the sum over targets of each target's fvu (as EleutherAI's clt-training fork); mse, the targets' summed squared error over their summed total variance (each target weighted by its variance)"),
    saveEvery: z.number().int().positive().default(1000).describe('Save coders every this many optimizer steps'),
    saveBest: z.boolean().default(false).describe('Also keep the coders with the best loss under best/'),
    finetune: z.string().min(1).optional().describe("Coders to start from: a directory (PATH/<hookpoint>/sae.safetensors) or a Hub repo"),
    logToWandb: z.boolean().default(true).describe('Log to Weights & Biases when wandb is importable'),
    runName: z.string().min(1).optional().describe('Name of the run (its directory under save_dir)'),
    wandbLogFrequency: z.number().int().positive().default(1).describe('Log metrics every this many optimizer steps'),
    saveDir: z.string().min(1).default('checkpoints').describe('Directory for checkpoints'),
    evalEvery: z.number().int().nonnegative().default(0).describe('Evaluate the coders on held-out rows every this many optimizer steps (0: never)'),
    evalTokens: z.number().int().positive().default(16_384).describe('Evaluate each --eval_every on at most this many tokens (whole rows) of held-out rows'),
  })
  .strict();

/** {@link TrainConfigObject} with the reference's cross-field rules. */
export const TrainConfigSchema = TrainConfigObject.superRefine((cfg, ctx) => {
    if (cfg.layers.length && cfg.layerStride !== 1) {
      ctx.addIssue({ code: 'custom', path: ['layers'], message: 'give layers or layer_stride, not both' });
    }
    if (cfg.hookpoints.length && cfg.layers.length) {
      ctx.addIssue({ code: 'custom', path: ['hookpoints'], message: 'give hookpoints or layers, not both' });
    }
    if (cfg.distributeModules && cfg.lossFn !== 'fvu') {
      ctx.addIssue({ code: 'custom', path: ['distributeModules'], message: `distribute_modules works only with loss_fn fvu (got ${cfg.lossFn})` });
    }
    if (cfg.initSeeds.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['initSeeds'], message: 'give at least one seed' });
    }
    const repeated = cfg.initSeeds.filter((s, i) => cfg.initSeeds.indexOf(s) !== i);
    if (repeated.length) {
      ctx.addIssue({ code: 'custom', path: ['initSeeds'], message: `seed ${repeated[0]} is given twice; each seed trains its own coder (seedN), so give each once` });
    }
    if (cfg.runName !== undefined && !isInside(cfg.runName)) {
      ctx.addIssue({ code: 'custom', path: ['runName'], message: `"${cfg.runName}" would leave save_dir; use a plain name (letters, digits, -, _, and / for subfolders)` });
    }
    let variants: Variant[];
    try {
      variants = sweepVariants(cfg, cfg.sweep, FIELD_SCHEMAS);
      // The parsed config is this object: its variants are kept for variantsOf.
      expanded.set(cfg, variants);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['sweep'], message: (err as Error).message.replace(/^sweep: /, '') });
      return;
    }
    if (cfg.crossLayer) {
      const why = crossLayerTrainingProblem(cfg, variants);
      if (why) ctx.addIssue({ code: 'custom', path: ['crossLayer'], message: why });
    } else if (cfg.crossLayerLoss !== 'fvu') {
      ctx.addIssue({ code: 'custom', path: ['crossLayerLoss'], message: `only applies with --cross_layer (got ${cfg.crossLayerLoss}); a per-layer coder's loss is its fvu` });
    }
    if (cfg.sweep.length && cfg.lossFn !== 'fvu') {
      ctx.addIssue({ code: 'custom', path: ['sweep'], message: `a sweep trains with loss_fn fvu only (got ${cfg.lossFn}): ce and kl train each coder through the model's output, which needs a forward per configuration` });
    }
    // What can be checked without the model: k against a number of latents given outright.
    for (const v of variants) {
      const { numLatents } = v.sae;
      const where = v.name ? ` (configuration ${v.name})` : '';
      const problem = numLatents > 0 ? coderShapeProblem(v.sae, numLatents, `num_latents=${numLatents}${where}`) : undefined;
      if (problem) ctx.addIssue({ code: 'custom', path: ['sae', problem.field], message: problem.message });
      for (const p of coderConfigProblems(v.sae)) ctx.addIssue({ code: 'custom', path: ['sae', p.field], message: `${p.message}${where}` });
      if (!activation(v.sae.activation).usesK && v.kDecaySteps > 0) ctx.addIssue({ code: 'custom', path: ['kDecaySteps'], message: `${v.sae.activation} does not select by k, so there is no k to decay${where}` });
    }
    if (cfg.lossFn !== 'fvu' && variants.some((v) => v.sae.matryoshkaPrefixes.length)) {
      ctx.addIssue({ code: 'custom', path: ['sae', 'matryoshkaPrefixes'], message: `trains with loss_fn fvu only (got ${cfg.lossFn}): its loss is each prefix's reconstruction error, and ce and kl train through the whole reconstruction` });
    }
    const l0Trained = variants.some((v) => activation(v.sae.activation).l0 !== undefined);
    for (const field of ['l0Coefficient', 'targetL0'] as const) {
      if (!l0Trained && variants.some((v) => v[field] !== undefined)) {
        ctx.addIssue({ code: 'custom', path: [field], message: `only applies to an activation trained towards an L0 (${ACTIVATIONS.filter((a) => a.l0).map((a) => a.name).join(', ')}); this run trains ${[...new Set(variants.map((v) => v.sae.activation))].join(', ')}` });
      }
    }
  });

/** Why a run cannot train cross-layer transcoders (what is not supported with them yet), or undefined; a sweep trains one CLT per configuration. */
function crossLayerTrainingProblem(cfg: z.output<typeof TrainConfigObject>, variants: readonly Variant[]): string | undefined {
  for (const v of variants) {
    const where = v.name ? ` (configuration ${v.name})` : '';
    const coder = crossLayerUnsupported(v.sae);
    if (coder) return `${coder}${where}`;
    if (v.optimizer === 'muon') return `not with muon: its decoders are [latents, targets, width], not matrices${where}`;
  }
  if (cfg.lossFn !== 'fvu') return `trains with loss_fn fvu only (got ${cfg.lossFn}): its loss is the sum of every target's fvu`;
  if (cfg.initSeeds.length > 1) return 'one seed: a cross-layer transcoder spans the hookpoints, one per run (or per configuration of a sweep)';
  // With distributed modules no rank holds a whole CLT, and the ranks' best losses would disagree on when to save one.
  if (cfg.distributeModules && cfg.evalEvery > 0) return 'eval_every is not supported with distribute_modules (no rank holds the whole CLT); evaluate a checkpoint with sparsify eval, or train data parallel';
  if (cfg.distributeModules && cfg.saveBest) return 'save_best is not supported with distribute_modules yet; train data parallel for it';
  if (cfg.microAccSteps > 1) return 'not with micro_acc_steps above 1 yet';
  return undefined;
}

const FIELD_SCHEMAS: FieldSchemas = { coder: SparseCoderConfigSchema.shape, train: TrainConfigObject.shape };

/** Each parsed config's sweep, expanded once when it was parsed. */
const expanded = new WeakMap<object, Variant[]>();

/** Whether `cfg` is a config this module parsed (and so needs no parsing again). */
export function isParsedTrainConfig(cfg: unknown): cfg is TrainConfig {
  return typeof cfg === 'object' && cfg !== null && expanded.has(cfg);
}

/**
 * The coder configurations a run trains on every hookpoint: one (named '') without a sweep.
 *
 * @example
 * variantsOf(trainConfig({ sweep: ['k=16,32'] })).map((v) => v.name); // ['k16', 'k32']
 */
export function variantsOf(cfg: TrainConfig): Variant[] {
  let variants = expanded.get(cfg);
  if (!variants) {
    variants = sweepVariants(cfg, cfg.sweep, FIELD_SCHEMAS);
    expanded.set(cfg, variants);
  }
  return variants;
}

/** The weight of a configuration's L0 loss, its default resolved (1 with a target, as dictionary_learning; an L0 penalty of 0.001 against fvu without). */
export function l0CoefficientOf(v: { l0Coefficient?: number | undefined; targetL0?: number | undefined }): number {
  return v.l0Coefficient ?? (v.targetL0 !== undefined ? 1 : 0.001);
}

/** Whether a run name stays inside save_dir: relative, no `..` segment, not empty. */
function isInside(runName: string): boolean {
  if (isAbsolute(runName) || runName.startsWith('~')) return false;
  const parts = runName.split(/[\\/]+/);
  return parts.every((p) => p !== '..') && parts.some((p) => p !== '' && p !== '.');
}

export type TrainConfig = z.output<typeof TrainConfigSchema>;
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;

/**
 * Fill defaults and validate a training config.
 *
 * @example
 * const cfg = trainConfig({ sae: { k: 64 }, batchSize: 8, hookpoints: ['layers.*.mlp'] });
 */
export function trainConfig(input: TrainConfigInput = {}, where = 'train config'): TrainConfig {
  return parseWith(TrainConfigSchema, input, where, snakeCase);
}

/** Options of a `sparsify` run beyond TrainConfig: model, data, resume. */
export const RunOptionsSchema = z
  .object({
    model: z.string().min(1).default('HuggingFaceTB/SmolLM2-135M').describe('Model name on the Hub, or a local path'),
    dataset: z.string().min(1).default('EleutherAI/SmolLM2-135M-10B').describe('Dataset name, local path, saved dataset, or .bin token file'),
    split: DataOptionsShape.split,
    ctxLen: DataOptionsShape.ctxLen,
    hfToken: z.string().optional().describe('Hugging Face token'),
    revision: z.string().optional().describe('Model revision'),
    loadIn8bit: z.boolean().default(false).describe('Load the model in 8-bit (needs bitsandbytes)'),
    maxExamples: z.number().int().positive().optional().describe('Train on at most this many rows'),
    holdout: DataOptionsShape.holdout,
    resume: z
      .union([z.boolean(), z.literal('auto')])
      .default(false)
      .describe('Resume from save_dir/run_name; auto: resume when it holds a complete checkpoint, else start fresh (for restarted jobs: --max_restarts)'),
    fromCache: z.string().min(1).optional().describe('Train from an activation cache written by `sparsify cache` instead of running the model (loss_fn fvu only)'),
    overwrite: z.boolean().default(false).describe('If save_dir/run_name holds an earlier run, move it aside (to <run>.old-<time>) and start a new one'),
    distTimeout: z
      .number()
      .positive()
      .default(600)
      .describe('Under sparsify-launch: seconds a collective waits for the other ranks once training starts, before the rank fails (a week while rank 0 prepares the data)'),
    textColumn: DataOptionsShape.textColumn,
    shuffleSeed: DataOptionsShape.shuffleSeed,
    dataPreprocessingNumProc: DataOptionsShape.dataPreprocessingNumProc,
    dataArgs: DataOptionsShape.dataArgs,
    ...OutputOptionsShape,
  })
  .strict();

export type RunOptions = z.output<typeof RunOptionsSchema>;

/** Parse "k=v,k2=v2": "true"/"false" become booleans, integers and floats numbers. */
export function parseDataArgs(text: string): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  if (!text.trim()) return out;
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError(`data_args: "${pair}" is not key=value (expected "k=v,k2=v2")`);
    const key = pair.slice(0, eq).trim();
    const raw = pair.slice(eq + 1).trim();
    if (raw === 'true' || raw === 'false') out[key] = raw === 'true';
    else if (/^[-+]?\d+$/.test(raw)) out[key] = Number.parseInt(raw, 10);
    else if (/^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(raw)) out[key] = Number.parseFloat(raw);
    else out[key] = raw;
  }
  return out;
}
