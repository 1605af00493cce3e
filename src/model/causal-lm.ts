/** A Hugging Face causal LM held by the runtime, for using coders on real activations. */
import { hiddenStates, modelConfig, modelLoad, tokenize, tokenizerLoad, type PyObject, type Tensor } from '../bridge/ops.js';
import { localPath } from '../util/paths.js';
import { getRuntime } from '../bridge/runtime.js';
import type { SparseCoder, EncoderOutput } from '../coder/sparse-coder.js';
import type { GenerateOptions } from '../config/steer.js';
import { generate, interventionLogits, type Generation, type Intervention } from '../steer/generate.js';

export interface CausalLMOptions {
  device?: string;
  /** Weight dtype; default bf16 on GPUs that support it, else float32. */
  dtype?: 'float32' | 'bfloat16' | 'float16' | 'auto';
  revision?: string;
  token?: string;
}

/**
 * A causal language model and its tokenizer.
 *
 * @example
 * const lm = await CausalLM.load('HuggingFaceTB/SmolLM2-135M');
 * const states = await lm.hiddenStates('Hello, world!'); // one [tokens, D] tensor per layer, embeddings first
 */
export class CausalLM {
  private constructor(
    readonly name: string,
    readonly model: PyObject,
    readonly tokenizer: PyObject,
    readonly device: string,
    /** Generation stops at these (the generation config's EOS ids, else the config's). */
    readonly eosTokenIds: readonly number[],
    /** The longest sequence the model takes (null: its config states no limit). */
    readonly maxPositions: number | null,
  ) {}

  static async load(nameOrPath: string, options: CausalLMOptions = {}): Promise<CausalLM> {
    const device = options.device ?? 'cpu';
    (await getRuntime()).checkDevice(device);
    const common = { revision: options.revision, token: options.token };
    const source = localPath(nameOrPath, 'model') ?? nameOrPath;
    const tokenizer = await tokenizerLoad(source, common);
    const model = await modelLoad({ nameOrPath: source, kind: 'causal_lm', device, dtype: options.dtype ?? 'auto', ...common });
    const cfg = await modelConfig(model);
    return new CausalLM(nameOrPath, model, tokenizer, device, cfg.eosTokenIds, cfg.maxPositions);
  }

  /** Token ids of `text`, shape [1, T]. */
  async tokenize(text: string): Promise<Tensor> {
    const out = await tokenize(this.tokenizer, text, this.device);
    return out.input_ids;
  }

  /** Hidden states of every layer (embedding output first), each flattened to [tokens, D]. */
  async hiddenStates(text: string | Tensor): Promise<Tensor[]> {
    const inputIds = typeof text === 'string' ? await this.tokenize(text) : text;
    return hiddenStates(this.model, inputIds);
  }

  /**
   * Continue `prompt` (greedy, or sampled with a seed), with `interventions` in place: each
   * adds `scale * W_dec[latent]` at its hookpoint, or clamps the latent through its coder.
   *
   * @example
   * const [coder] = (await SparseCoder.loadMany('checkpoints/default')).values();
   * const out = await lm.generate('The whale', { maxNewTokens: 20, interventions: [{ hookpoint: 'layers.3', coder, latent: 100, scale: 8 }] });
   * console.log(out.text);
   */
  generate(prompt: string, options: Partial<GenerateOptions> & { interventions?: readonly Intervention[] } = {}): Promise<Generation> {
    const { interventions = [], ...rest } = options;
    return generate(this, prompt, rest, interventions);
  }

  /** The logits [tokens, vocab] (float32) of `prompt`, with `interventions` in place. */
  logits(prompt: string | Tensor, options: { interventions?: readonly Intervention[] } = {}): Promise<Tensor> {
    return interventionLogits(this, prompt, options.interventions ?? []);
  }
}

/**
 * The reference README's "gather latent activations": run the model on `text` and encode
 * each hidden state with the coder for that position (coders in natural order, as loadMany
 * returns them, paired with hidden states embeddings-first).
 */
export async function gatherLatentActivations(lm: CausalLM, coders: Map<string, SparseCoder>, text: string): Promise<Map<string, EncoderOutput>> {
  const states = await lm.hiddenStates(text);
  const out = new Map<string, EncoderOutput>();
  let i = 0;
  for (const [name, coder] of coders) {
    const state = states[i++];
    if (!state) break;
    out.set(name, await coder.encode(state));
  }
  return out;
}
