import { join } from 'node:path';
import { loadDataset, type TokenDataset } from '../../src/data/dataset.js';
import { loadModel, loadTokenizer, type LanguageModel } from '../../src/model/language-model.js';
import { makeTinyLM } from './python.js';
import { repoRoot } from './processes.js';

/** The committed Moby-Dick sample (the bundled default corpus). */
export const CORPUS = join(repoRoot, 'assets', 'default', 'corpus', 'moby-dick-101-135.jsonl');

export interface Fixture {
  modelDir: string;
  model: LanguageModel;
  data: TokenDataset;
}

/** A tiny model saved under `dir` and `rows` rows of `ctxLen` tokens of the sample text. */
export async function tinyFixture(
  dir: string,
  options: { arch?: 'gpt_neox' | 'llama' | 'gpt2'; hidden?: number; layers?: number; kind?: 'base' | 'causal_lm'; rows?: number; ctxLen?: number } = {},
): Promise<Fixture> {
  const modelDir = await makeTinyLM(join(dir, options.arch ?? 'gpt_neox'), { arch: options.arch ?? 'gpt_neox', hidden: options.hidden ?? 32, layers: options.layers ?? 2 });
  const model = await loadModel(modelDir, { kind: options.kind ?? 'base', device: 'cpu' });
  const tokenizer = await loadTokenizer(modelDir);
  const data = await loadDataset(CORPUS, { tokenizer, ctxLen: options.ctxLen ?? 32, maxExamples: options.rows ?? 256 });
  return { modelDir, model, data };
}
