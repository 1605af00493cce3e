/**
 * The bundled default: a tiny GPT-NeoX trained on Moby-Dick chapters 1-100 and chapters
 * 101-135 as text (offline), and the settings `npx sparsify` trains it with.
 */
import { join } from 'node:path';
import { packageRoot } from '../bridge/paths.js';

/**
 * Paths of the bundled model and text, for apps that want a model to try things on.
 *
 * @example
 * const model = await loadModel(bundledDefault.model, { kind: 'base' });
 */
export const bundledDefault = {
  /** A transformers model folder (GPT-NeoX, hidden 128, 4 layers, 2,048-token BPE tokenizer). */
  model: join(packageRoot, 'assets', 'default', 'model'),
  /** A JSON-lines file of text (`text` column). */
  dataset: join(packageRoot, 'assets', 'default', 'corpus', 'moby-dick-101-135.jsonl'),
  /** What `npx sparsify` (no MODEL) trains with, unless given: the last tenth of the text is left for `sparsify eval`. */
  settings: { ctxLen: 128, batchSize: 16, saveEvery: 25, runName: 'default', holdout: 0.1 },
} as const;
