/** A Hugging Face causal LM held by the runtime, for using coders on real activations. */
import { hiddenStates, modelLoad, tokenize, tokenizerLoad, type PyObject, type Tensor } from '../bridge/ops.js';
import { localPath } from '../util/paths.js';
import { getRuntime } from '../bridge/runtime.js';
import type { SparseCoder, EncoderOutput } from '../coder/sparse-coder.js';

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
  ) {}

  static async load(nameOrPath: string, options: CausalLMOptions = {}): Promise<CausalLM> {
    const device = options.device ?? 'cpu';
    (await getRuntime()).checkDevice(device);
    const common = { revision: options.revision, token: options.token };
    const source = localPath(nameOrPath, 'model') ?? nameOrPath;
    const tokenizer = await tokenizerLoad(source, common);
    const model = await modelLoad({ nameOrPath: source, kind: 'causal_lm', device, dtype: options.dtype ?? 'auto', ...common });
    return new CausalLM(nameOrPath, model, tokenizer, device);
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
