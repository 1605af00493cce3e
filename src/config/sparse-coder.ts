import { z } from 'zod';
import { ACTIVATIONS, ACTIVATION_NAMES, DEFAULT_ACTIVATION, activation, learnsThreshold, type Activation } from '../activations/index.js';
import { camelCase, snakeCase } from '../util/case.js';
import { sameJson } from '../util/same-json.js';
import { ConfigError, parseWith } from './errors.js';

/**
 * The sparse coder's configuration (the reference's `SparseCoderConfig`), camelCase in TS.
 * Files (`cfg.json`) and the CLI spell the same fields in snake_case.
 */
export const SparseCoderConfigSchema = z
  .object({
    activation: z
      .enum(ACTIVATION_NAMES)
      .default(DEFAULT_ACTIVATION)
      .describe(`Activation: ${ACTIVATIONS.map((a) => `${a.name}, ${a.summary}`).join('; ')}`),
    expansionFactor: z.number().int().positive().default(32).describe('Latents per input dimension (when num_latents is 0)'),
    normalizeDecoder: z.boolean().default(true).describe('Keep decoder rows at unit norm'),
    numLatents: z.number().int().nonnegative().default(0).describe('Number of latents; 0 means d_in * expansion_factor'),
    k: z.number().int().positive().default(32).describe('Number of nonzero latents per token'),
    multiTopk: z.boolean().default(false).describe('Also train with 4k latents (Multi-TopK loss)'),
    skipConnection: z.boolean().default(false).describe('Add a linear skip connection W_skip'),
    transcode: z.boolean().default(false).describe('Predict the module output from its input (a transcoder)'),
    inferenceThreshold: z
      .boolean()
      .optional()
      .describe(
        `Learn a threshold while training and encode with pre * (pre > threshold) at inference, as dictionary_learning does (${ACTIVATIONS.filter((a) => a.learnedThreshold).map((a) => a.name).join(', ')}) (default: on for ${ACTIVATIONS.filter((a) => a.learnedThreshold?.byDefault).map((a) => a.name).join(', ')})`,
      ),
    jumpreluBandwidth: z
      .number()
      .positive()
      .default(0.001)
      .describe("jumprelu: the width of the rectangle kernel of its thresholds' pseudo-derivatives"),
    matryoshkaPrefixes: z
      .array(z.number().int().positive())
      .default([])
      .describe('Matryoshka: latent counts m1 < m2 < ... < num_latents; the loss adds the reconstruction from latents 0..m_i-1 alone for each, as dictionary_learning\'s MatryoshkaBatchTopK (default: none)'),
    matryoshkaWeights: z
      .array(z.number().positive())
      .optional()
      .describe('Matryoshka: the weight of each prefix\'s fvu in the loss and, last, of the whole reconstruction\'s, one more than the prefixes (default: equal, 1 / their number)'),
  })
  .strict();

/** A rule between a coder config's fields that a value breaks: the field and what is wrong. */
export interface CoderConfigProblem {
  field: keyof SparseCoderConfig;
  message: string;
}

/** The rules between a coder config's fields (its activation's options); none when it is consistent. */
export function coderConfigProblems(cfg: SparseCoderConfig): CoderConfigProblem[] {
  const problems: CoderConfigProblem[] = [];
  const act = activation(cfg.activation);
  if (cfg.inferenceThreshold && !act.learnedThreshold) {
    const can = ACTIVATIONS.filter((a) => a.learnedThreshold).map((a) => a.name);
    problems.push({ field: 'inferenceThreshold', message: `${cfg.activation} does not learn an inference threshold (${can.join(' and ')} do)` });
  }
  if (!act.usesK) {
    const k = SparseCoderConfigSchema.shape.k.parse(undefined);
    if (cfg.k !== k) problems.push({ field: 'k', message: `${cfg.activation} does not select by k (its thresholds do; aim at an L0 with --target_l0), so leave k at its default` });
    if (cfg.multiTopk) problems.push({ field: 'multiTopk', message: `${cfg.activation} does not select by k, so it has no 4k latents to train` });
  }
  const prefixes = cfg.matryoshkaPrefixes;
  const rising = prefixes.findIndex((m, i) => i > 0 && m <= prefixes[i - 1]!);
  if (rising > 0) problems.push({ field: 'matryoshkaPrefixes', message: `${prefixes.join(' ')}: each prefix must be larger than the one before (${prefixes[rising]} follows ${prefixes[rising - 1]})` });
  if (cfg.matryoshkaWeights !== undefined) {
    if (!prefixes.length) problems.push({ field: 'matryoshkaWeights', message: 'weighs the prefixes of matryoshka_prefixes, and none are given' });
    else if (cfg.matryoshkaWeights.length !== prefixes.length + 1) {
      problems.push({ field: 'matryoshkaWeights', message: `${cfg.matryoshkaWeights.join(' ')}: give ${prefixes.length + 1} weights, one per prefix of matryoshka_prefixes (${prefixes.join(' ')}) and the last for all the latents` });
    }
  }
  return problems;
}

/**
 * Why a coder of `numLatents` latents cannot have this config, or undefined when it can: its
 * activation's rule for k, and Matryoshka prefixes below the latent count. `latents` names the
 * latent count in the message ("the number of latents (64)").
 */
export function coderShapeProblem(cfg: SparseCoderConfig, numLatents: number, latents: string): CoderConfigProblem | undefined {
  const problem = activation(cfg.activation).check(cfg.k, numLatents, latents);
  if (problem) return { field: 'k', message: problem };
  const over = cfg.matryoshkaPrefixes.find((m) => m >= numLatents);
  if (over !== undefined) return { field: 'matryoshkaPrefixes', message: `${over} is not below ${latents}; each prefix must leave latents after it` };
  return undefined;
}

/** A problem as one line: k's rule speaks for itself, other fields are named first. */
export function describeProblem(p: CoderConfigProblem): string {
  return p.field === 'k' ? p.message : `${snakeCase(p.field)}: ${p.message}`;
}

/** The Matryoshka loss's weights, one per prefix and the last for all latents (equal unless given); none without prefixes. */
export function matryoshkaWeightsOf(cfg: { matryoshkaPrefixes: readonly number[]; matryoshkaWeights?: readonly number[] | undefined }): readonly number[] {
  const groups = cfg.matryoshkaPrefixes.length + 1;
  if (groups === 1) return [];
  return cfg.matryoshkaWeights ?? Array.from({ length: groups }, () => 1 / groups);
}

/** A complete coder config (every field set). */
export type SparseCoderConfig = z.output<typeof SparseCoderConfigSchema>;
/** A coder config as written by users: every field optional. */
export type SparseCoderConfigInput = z.input<typeof SparseCoderConfigSchema>;

/** Same config under the reference's other names. */
export const SaeConfigSchema = SparseCoderConfigSchema;
export type SaeConfig = SparseCoderConfig;
/** A transcoder config: `transcode` defaults to true. */
export const TranscoderConfigSchema = SparseCoderConfigSchema.extend({
  transcode: z.boolean().default(true).describe('Predict the module output from its input (a transcoder)'),
});
export type TranscoderConfig = z.output<typeof TranscoderConfigSchema>;

/**
 * Fill defaults and validate.
 *
 * @example
 * const cfg = sparseCoderConfig({ k: 64 }); // cfg.expansionFactor === 32
 */
export function sparseCoderConfig(input: SparseCoderConfigInput = {}, where = 'sparse coder config'): SparseCoderConfig {
  return checked(parseWith(SparseCoderConfigSchema, input, where, snakeCase), where);
}

/** A transcoder config with defaults filled (transcode: true). */
export function transcoderConfig(input: SparseCoderConfigInput = {}, where = 'transcoder config'): TranscoderConfig {
  return checked(parseWith(TranscoderConfigSchema, input, where, snakeCase), where);
}

/** The rules between fields checked, and a setting left to its activation's default resolved. */
function checked<C extends SparseCoderConfig>(cfg: C, where: string): C {
  const problems = coderConfigProblems(cfg);
  if (problems.length) throw new ConfigError(`${where}: ${problems.map((p) => `${snakeCase(p.field)}: ${p.message}`).join('; ')}`);
  return { ...cfg, inferenceThreshold: learnsThreshold(cfg.activation, cfg.inferenceThreshold) };
}

/** The number of latents M for input width `dIn`. */
export function numLatentsFor(cfg: SparseCoderConfig, dIn: number): number {
  return cfg.numLatents || dIn * cfg.expansionFactor;
}

/** Check the config against a concrete width: its activation's rule for k and the number of latents. */
export function checkCoderShape(cfg: SparseCoderConfig, dIn: number, where: string): void {
  if (!Number.isInteger(dIn) || dIn <= 0) throw new ConfigError(`${where}: d_in must be a positive integer (got ${dIn})`);
  const m = numLatentsFor(cfg, dIn);
  const problem = coderShapeProblem(cfg, m, `the number of latents (${m})`);
  if (problem) throw new ConfigError(`${where}: ${describeProblem(problem)}`);
}

/**
 * Fields the reference does not have: which activations they apply to, and what a `cfg.json`
 * without them means. A coder writes those that apply to its activation, except that a coder of
 * the reference's activations leaves them out at these values (its file is then exactly the
 * reference's).
 */
const NEW_FIELDS: Partial<Record<keyof SparseCoderConfig, { appliesTo: (a: Activation) => boolean; absentMeans: unknown }>> = {
  inferenceThreshold: { appliesTo: (a) => a.learnedThreshold !== undefined, absentMeans: false },
  jumpreluBandwidth: { appliesTo: (a) => a.encoder !== undefined, absentMeans: SparseCoderConfigSchema.shape.jumpreluBandwidth.parse(undefined) },
  matryoshkaPrefixes: { appliesTo: () => true, absentMeans: [] },
  matryoshkaWeights: { appliesTo: () => true, absentMeans: undefined },
};


/** The reference's activations (sparsify 1.3.0's). */
const REFERENCE_ACTIVATIONS: readonly string[] = ['topk', 'groupmax'];

/** The `cfg.json` contents: snake_case fields (settings left to a default written as they resolve) plus `d_in`. */
export function coderConfigToJson(cfg: SparseCoderConfig, dIn: number): Record<string, unknown> {
  const resolved: SparseCoderConfig = { ...cfg, inferenceThreshold: learnsThreshold(cfg.activation, cfg.inferenceThreshold) };
  const act = activation(cfg.activation);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resolved)) {
    const added = NEW_FIELDS[k as keyof SparseCoderConfig];
    if (v === undefined) continue;
    if (added && (!added.appliesTo(act) || (REFERENCE_ACTIVATIONS.includes(cfg.activation) && sameJson(added.absentMeans, v)))) continue;
    out[snakeCase(k)] = v;
  }
  out.d_in = dIn;
  return out;
}

/** Read a `cfg.json` object: unknown extra fields are ignored, as the reference does. */
export function coderConfigFromJson(json: unknown, where: string): { cfg: SparseCoderConfig; dIn: number } {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ConfigError(`${where}: expected a JSON object`);
  const known = new Set(Object.keys(SparseCoderConfigSchema.shape));
  const fields: Record<string, unknown> = Object.fromEntries(Object.entries(NEW_FIELDS).map(([k, f]) => [k, f.absentMeans]));
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    const key = camelCase(k);
    if (known.has(key)) fields[key] = v;
  }
  const dIn = (json as Record<string, unknown>).d_in;
  if (typeof dIn !== 'number' || !Number.isInteger(dIn) || dIn <= 0) {
    throw new ConfigError(`${where}: d_in must be a positive integer (got ${JSON.stringify(dIn)})`);
  }
  return { cfg: sparseCoderConfig(fields as SparseCoderConfigInput, where), dIn };
}
