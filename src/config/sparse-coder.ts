import { z } from 'zod';
import { ACTIVATIONS, ACTIVATION_NAMES, DEFAULT_ACTIVATION, activation } from '../activations/index.js';
import { camelCase, snakeCase } from '../util/case.js';
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
  })
  .strict();

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
  return parseWith(SparseCoderConfigSchema, input, where, snakeCase);
}

/** A transcoder config with defaults filled (transcode: true). */
export function transcoderConfig(input: SparseCoderConfigInput = {}, where = 'transcoder config'): TranscoderConfig {
  return parseWith(TranscoderConfigSchema, input, where, snakeCase);
}

/** The number of latents M for input width `dIn`. */
export function numLatentsFor(cfg: SparseCoderConfig, dIn: number): number {
  return cfg.numLatents || dIn * cfg.expansionFactor;
}

/** Check the config against a concrete width: its activation's rule for k and the number of latents. */
export function checkCoderShape(cfg: SparseCoderConfig, dIn: number, where: string): void {
  if (!Number.isInteger(dIn) || dIn <= 0) throw new ConfigError(`${where}: d_in must be a positive integer (got ${dIn})`);
  const m = numLatentsFor(cfg, dIn);
  const problem = activation(cfg.activation).check(cfg.k, m, `the number of latents (${m})`);
  if (problem) throw new ConfigError(`${where}: ${problem}`);
}

/** The `cfg.json` contents: snake_case fields plus `d_in`. */
export function coderConfigToJson(cfg: SparseCoderConfig, dIn: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg)) out[snakeCase(k)] = v;
  out.d_in = dIn;
  return out;
}

/** Read a `cfg.json` object: unknown extra fields are ignored, as the reference does. */
export function coderConfigFromJson(json: unknown, where: string): { cfg: SparseCoderConfig; dIn: number } {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ConfigError(`${where}: expected a JSON object`);
  const known = new Set(Object.keys(SparseCoderConfigSchema.shape));
  const fields: Record<string, unknown> = {};
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
