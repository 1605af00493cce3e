/**
 * Generation with coders inside the model: a prompt continued token by token (greedy, or
 * sampled with a seed) while interventions add a latent's decoder row at a hookpoint or clamp
 * the latent through its coder. One bridge call per new token: the forward with the
 * intervention hooks and the next-token program; the ids grow in the runtime.
 */
import { SparsifyError } from '../bridge/errors.js';
import { tokenize, tokenizerDecode, type PyObject, type Tensor } from '../bridge/ops.js';
import type { SparseCoder } from '../coder/sparse-coder.js';
import { parseWith } from '../config/errors.js';
import { GenerateOptionsSchema, type GenerateOptions } from '../config/steer.js';
import { checkCodersFit } from '../eval/evaluate.js';
import { bind, forwardPasses, type PassHook } from '../kernels/index.js';
import { addDirectionHookProgram, clampHookProgram, keepLogitsProgram, nextTokenProgram } from './programs.js';

/** What generation needs of a causal LM (CausalLM has it). */
export interface GenerationModel {
  readonly model: PyObject;
  readonly tokenizer: PyObject;
  readonly device: string;
  /** Generation stops at these. */
  readonly eosTokenIds: readonly number[];
  /** The longest sequence the model takes (null: no stated limit). */
  readonly maxPositions: number | null;
}

/**
 * One intervention at a hookpoint: with `scale`, add `scale * W_dec[latent]` to the module's
 * output at every position; with `clamp`, encode what the coder reads, set the latent's
 * activation to `clamp`, decode and keep the reconstruction error.
 */
export interface Intervention {
  /** The module (the coder's hookpoint in its run, such as `layers.3`). */
  hookpoint: string;
  coder: SparseCoder;
  latent: number;
  scale?: number;
  clamp?: number;
}

/** A continuation. */
export interface Generation {
  prompt: string;
  /** The prompt's token count. */
  promptTokens: number;
  /** The new tokens' ids, and their text (the continuation only). */
  tokens: number[];
  text: string;
  /** It stopped at an end-of-sequence token (else at maxNewTokens). */
  stoppedAtEos: boolean;
}

/** Check interventions before anything runs: one line naming the value (a `device` also checks the coders are there). */
export function checkInterventions(interventions: readonly Intervention[], device?: string): void {
  const seen = new Set<string>();
  for (const [i, iv] of interventions.entries()) {
    const where = `intervention ${i} (${iv.hookpoint}:${iv.latent})`;
    const m = iv.coder.numLatents;
    if (!Number.isInteger(iv.latent) || iv.latent < 0 || iv.latent >= m) throw new SparsifyError(`${where}: latent ${iv.latent} is out of range: the coder has latents 0..${m - 1}`);
    if ((iv.scale === undefined) === (iv.clamp === undefined)) throw new SparsifyError(`${where}: give exactly one of scale and clamp`);
    const value = iv.scale ?? iv.clamp!;
    if (!Number.isFinite(value)) throw new SparsifyError(`${where}: ${iv.scale !== undefined ? 'scale' : 'clamp'} must be a finite number (got ${value})`);
    if (seen.has(iv.hookpoint)) throw new SparsifyError(`${where}: one intervention per hookpoint (${iv.hookpoint} has two)`);
    seen.add(iv.hookpoint);
    if (device !== undefined && iv.coder.device !== device) throw new SparsifyError(`${where}: the coder is on ${iv.coder.device}, the model on ${device}; load the coder with { device: '${device}' }`);
  }
}

/** Interventions as replacing hooks, checked first (the coders fit the model's modules too). */
async function interventionHooks(lm: GenerationModel, interventions: readonly Intervention[]): Promise<PassHook[]> {
  checkInterventions(interventions, lm.device);
  if (interventions.length) await checkCodersFit(lm, interventions.map((iv) => ({ name: `${iv.hookpoint}:${iv.latent}`, hookpoint: iv.hookpoint, coder: iv.coder })));
  return interventions.map((iv, i) => ({
    key: `steer:${i}`,
    module: iv.hookpoint,
    replace: true,
    program:
      iv.scale !== undefined
        ? bind(addDirectionHookProgram(), { params: iv.coder.params, latent: iv.latent, scale: iv.scale })
        : bind(clampHookProgram(iv.coder.structure), { params: iv.coder.params, k: iv.coder.cfg.k, latent: iv.latent, value: iv.clamp! }),
  }));
}

async function promptIds(lm: GenerationModel, prompt: string): Promise<Tensor> {
  const ids = (await tokenize(lm.tokenizer, prompt, lm.device)).input_ids;
  if (ids.shape[1] === 0) throw new SparsifyError('the prompt is empty: give some text to continue');
  return ids;
}


/**
 * Continue `prompt` with the interventions in place (none: the model as it is).
 *
 * @example
 * const out = await generate(lm, 'The whale', { maxNewTokens: 20 }, [{ hookpoint: 'layers.3', coder, latent: 100, scale: 8 }]);
 */
export async function generate(lm: GenerationModel, prompt: string, options: Partial<GenerateOptions> = {}, interventions: readonly Intervention[] = []): Promise<Generation> {
  const opts = parseWith(GenerateOptionsSchema, options, 'generate options');
  let ids = await promptIds(lm, prompt);
  const promptTokens = ids.shape[1]!;
  if (lm.maxPositions !== null && promptTokens + opts.maxNewTokens > lm.maxPositions) {
    throw new SparsifyError(`the prompt's ${promptTokens} tokens and ${opts.maxNewTokens} new tokens make ${promptTokens + opts.maxNewTokens}; this model takes at most ${lm.maxPositions}`);
  }
  const hooks = await interventionHooks(lm, interventions);
  const sampled = opts.temperature > 0;
  const tokens: number[] = [];
  let stoppedAtEos = false;
  for (let step = 0; step < opts.maxNewTokens; step++) {
    // Each step's draw from its own seed: the same text for the same seed, whatever ran before.
    const next = bind(nextTokenProgram(sampled), { temperature: opts.temperature, seed: opts.seed * 1_000_003 + step });
    const reply = await forwardPasses({ model: lm.model, inputIds: ids, passes: [{ hooks, logits: { key: 'next', program: next } }], keep: ['ids'] });
    ids = reply.keep.ids as Tensor;
    const token = reply.metrics.next!.token!;
    tokens.push(token);
    if (opts.stopAtEos && lm.eosTokenIds.includes(token)) {
      stoppedAtEos = true;
      break;
    }
  }
  return { prompt, promptTokens, tokens, text: tokens.length ? await tokenizerDecode(lm.tokenizer, tokens) : '', stoppedAtEos };
}

/** The logits [tokens, vocab] (float32) of `prompt` (text, or ids [1, T]) with the interventions in place. */
export async function interventionLogits(lm: GenerationModel, prompt: string | Tensor, interventions: readonly Intervention[] = []): Promise<Tensor> {
  const ids = typeof prompt === 'string' ? await promptIds(lm, prompt) : prompt;
  if (lm.maxPositions !== null && ids.shape[1]! > lm.maxPositions) throw new SparsifyError(`the prompt is ${ids.shape[1]} tokens; this model takes at most ${lm.maxPositions}`);
  const hooks = await interventionHooks(lm, interventions);
  const reply = await forwardPasses({ model: lm.model, inputIds: ids, passes: [{ hooks, logits: { key: 'logits', program: bind(keepLogitsProgram(), {}) } }], keep: ['logits'] });
  return reply.keep.logits as Tensor;
}
