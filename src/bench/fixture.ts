/**
 * The benchmarks' model and data: a GPT-NeoX with random weights (seed 0) saved under `dir`,
 * and `rows` rows of `ctx` uniform random token ids (seed 0) as a uint16 `.bin`. By default
 * the CPU fixture: hidden 256, 4 layers, 4 heads, MLP 1024, vocabulary 4096.
 */
import { join } from 'node:path';
import { benchOp } from '../bridge/ops.js';

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
  await benchOp('bench.make_model', { model_dir: modelDir, bin, vocab: s.vocab, hidden: s.hidden, layers: s.layers, heads: s.heads, inter: s.inter, ctx, rows, low: s.lowestToken });
  return { modelDir, bin };
}
