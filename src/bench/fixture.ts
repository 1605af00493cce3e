/**
 * The benchmarks' model and data: a GPT-NeoX with random weights (seed 0) saved under `dir`,
 * and `rows` rows of `ctx` uniform random token ids (seed 0) as a uint16 `.bin`. By default
 * the CPU fixture: hidden 256, 4 layers, 4 heads, MLP 1024, vocabulary 4096.
 */
import { join } from 'node:path';
import { evalPython } from '../bridge/ops.js';

export interface BenchModelShape {
  hidden?: number;
  layers?: number;
  heads?: number;
  inter?: number;
  vocab?: number;
  /** The smallest token id drawn (1 keeps token 0 out). */
  lowestToken?: number;
}

export async function makeBenchModel(dir: string, ctx: number, rows: number, shape: BenchModelShape = {}): Promise<{ modelDir: string; bin: string }> {
  const s = { hidden: 256, layers: 4, heads: 4, inter: 1024, vocab: 4096, lowestToken: 0, ...shape };
  const modelDir = join(dir, 'model');
  const bin = join(dir, 'tokens.bin');
  await evalPython(
    `
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
import numpy as np
torch.manual_seed(0)
cfg = GPTNeoXConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=inter, max_position_embeddings=ctx)
GPTNeoXForCausalLM(cfg).save_pretrained(model_dir)
np.random.default_rng(0).integers(low, vocab, size=(rows * ctx,), dtype=np.uint16).tofile(bin)
result = None`,
    { ...s, low: s.lowestToken, model_dir: modelDir, bin, ctx, rows },
  );
  return { modelDir, bin };
}
