/**
 * The served explorer's model: a typed prompt run through the model and one coder (each
 * token's active latents), and the steering panel's continuations without and with a latent.
 * The model loads on the first request; requests run one at a time, a few may wait, and
 * beyond that the server says the model is busy. Prompts are capped in characters and tokens.
 */
import { z } from 'zod';
import { SparsifyError } from '../bridge/errors.js';
import type { Tensor } from '../bridge/ops.js';
import type { CrossLayerTranscoder } from '../coder/cross-layer.js';
import type { SparseCoder } from '../coder/sparse-coder.js';
import { parseWith } from '../config/errors.js';
import { bind, forwardPasses } from '../kernels/index.js';
import type { CausalLM } from '../model/causal-lm.js';
import { liveEncodeHookProgram } from './programs.js';
import type { LiveLimits, PromptReply, PromptRequest, SteerReply, SteerRequest } from './payloads.js';

/** The model and the cache's coders, by the cache's names. */
export interface LiveModels {
  lm: CausalLM;
  /**
   * `targets`: a cross-layer transcoder's source, steered through its decoder to each target
   * layer (added at every one; clamping is a per-layer coder's only).
   */
  coders: Map<string, { hookpoint: string; coder: SparseCoder; targets?: { hookpoint: string; coder: SparseCoder }[] }>;
}

export interface LiveOptions {
  /** The coders' names (checked before a request waits for the model). */
  coderNames: readonly string[];
  /** Characters of a prompt at most (default 2,000). */
  maxChars?: number;
  /** Tokens of a prompt at most (default 256). */
  maxTokens?: number;
  /** Tokens the steering panel generates at most (default 64). */
  maxNewTokens?: number;
  /** Requests that may wait behind the running one (default 2); more are told the model is busy. */
  maxWaiting?: number;
}

/**
 * A CLT's sources (those named, default all) for typed prompts and steering: each encodes its
 * layer's input, and steers through its decoders (a latent added at scale s adds s times its
 * decoder row for each target to that layer's MLP output).
 */
export async function crossLayerLiveCoders(clt: CrossLayerTranscoder, names: readonly string[] = clt.layers): Promise<LiveModels['coders']> {
  const coders: LiveModels['coders'] = new Map();
  for (const name of names) {
    const i = clt.layers.indexOf(name);
    if (i < 0) throw new SparsifyError(`no source layer ${name}: the cross-layer transcoder has ${clt.layers.join(', ')}`);
    const targets = [];
    for (let j = 0; i + j < clt.layers.length; j++) targets.push({ hookpoint: clt.layers[i + j]!, coder: (await clt.sourceView(i, j)).coder });
    coders.set(name, { hookpoint: name, coder: (await clt.sourceView(i)).coder, targets });
  }
  return coders;
}

/** The model is busy: the request was not queued (the server answers 503). */
export class LiveBusyError extends SparsifyError {}

const PromptRequestSchema = z.object({ text: z.string(), coder: z.string() }).strict();
const SteerRequestSchema = z
  .object({ text: z.string(), coder: z.string(), latent: z.number().int().min(0), scale: z.number().optional(), clamp: z.number().optional(), max_new_tokens: z.number().int().min(1).optional() })
  .strict()
  .refine((r) => (r.scale === undefined) !== (r.clamp === undefined), { message: 'give exactly one of scale and clamp', path: ['scale'] });

export class LiveExplorer {
  readonly limits: LiveLimits;
  private readonly maxWaiting: number;
  private models: Promise<LiveModels> | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  /** Requests queued or running. */
  private active = 0;

  /** @param load Loads the model and coders (called on the first request; again after a failure). */
  constructor(
    private readonly load: () => Promise<LiveModels>,
    private readonly options: LiveOptions,
  ) {
    this.limits = { max_chars: options.maxChars ?? 2000, max_tokens: options.maxTokens ?? 256, max_new_tokens: options.maxNewTokens ?? 64 };
    this.maxWaiting = options.maxWaiting ?? 2;
  }

  private loaded(): Promise<LiveModels> {
    if (!this.models) {
      this.models = this.load();
      this.models.catch(() => (this.models = undefined));
    }
    return this.models;
  }

  /** Run `job` after the requests before it; refused at once when too many wait. */
  private enqueue<T>(job: (m: LiveModels) => Promise<T>): Promise<T> {
    if (this.active > this.maxWaiting) return Promise.reject(new LiveBusyError(`the model is busy with ${this.active} other prompts; try again in a moment`));
    this.active++;
    const run = this.tail.then(async () => job(await this.loaded()));
    this.tail = run.catch(() => undefined);
    return run.finally(() => this.active--);
  }

  private checkText(text: string, coder: string): void {
    if (text.trim() === '') throw new SparsifyError('the prompt is empty: type some text');
    if (text.length > this.limits.max_chars) throw new SparsifyError(`the prompt is ${text.length} characters; the explorer takes at most ${this.limits.max_chars}`);
    if (!this.options.coderNames.includes(coder)) throw new SparsifyError(`no coder ${coder}: this explorer has ${this.options.coderNames.join(', ')}`);
  }

  /** The prompt's ids, at most max_tokens (and, with `extra` new tokens after it, within the model's positions). */
  private async promptIds(m: LiveModels, text: string, extra = 0): Promise<Tensor> {
    const ids = await m.lm.tokenize(text);
    const n = ids.shape[1]!;
    const cap = Math.min(this.limits.max_tokens, (m.lm.maxPositions ?? Infinity) - extra);
    if (n > cap) throw new SparsifyError(`the prompt is ${n} tokens; the explorer takes at most ${cap}${extra ? ` before ${extra} new ones` : ''}`);
    return ids;
  }

  /** Each token of `text` with the coder's active latents there, largest first. */
  prompt(request: PromptRequest): Promise<PromptReply> {
    const req = parseWith(PromptRequestSchema, request, 'prompt request');
    this.checkText(req.text, req.coder);
    return this.enqueue(async (m) => {
      const { hookpoint, coder } = m.coders.get(req.coder)!;
      const ids = await this.promptIds(m, req.text);
      const program = bind(liveEncodeHookProgram(coder.structure), { params: coder.params, k: coder.cfg.k, keepKey: 'live' });
      const reply = await forwardPasses({ model: m.lm.model, inputIds: ids, passes: [{ hooks: [{ key: 'live', module: hookpoint, program }] }], keep: ['live'] });
      const table = reply.keep.live as Tensor;
      const values = (await table.toArray()) as Float32Array;
      const width = table.shape[1]! / 2;
      const tokens = await ids.toNumbers();
      const latents = tokens.map((_, t) => {
        const row: [number, number][] = [];
        for (let j = 0; j < width; j++) {
          const act = values[t * 2 * width + j]!;
          if (act > 0) row.push([values[t * 2 * width + width + j]!, act]);
        }
        return row.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
      });
      return { coder: req.coder, tokens, latents };
    });
  }

  /** `text` continued greedily without and with the latent added (scale) or clamped. */
  steer(request: SteerRequest): Promise<SteerReply> {
    const req = parseWith(SteerRequestSchema, request, 'steer request');
    this.checkText(req.text, req.coder);
    const maxNewTokens = req.max_new_tokens ?? Math.min(20, this.limits.max_new_tokens);
    if (maxNewTokens > this.limits.max_new_tokens) throw new SparsifyError(`max_new_tokens ${maxNewTokens}: the explorer generates at most ${this.limits.max_new_tokens}`);
    return this.enqueue(async (m) => {
      const { hookpoint, coder, targets } = m.coders.get(req.coder)!;
      if (targets && req.clamp !== undefined) throw new SparsifyError(`${req.coder} is a cross-layer transcoder's source: its latents steer by scale (added at each layer they write to), not clamp`);
      await this.promptIds(m, req.text, maxNewTokens);
      const interventions = (targets ?? [{ hookpoint, coder }]).map((t) => ({ hookpoint: t.hookpoint, coder: t.coder, latent: req.latent, ...(req.scale !== undefined ? { scale: req.scale } : { clamp: req.clamp! }) }));
      const steered = await m.lm.generate(req.text, { maxNewTokens, interventions });
      const plain = await m.lm.generate(req.text, { maxNewTokens });
      return { without: plain.text, with: steered.text };
    });
  }
}
