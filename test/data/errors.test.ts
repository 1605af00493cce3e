// Data a user got wrong: each is one line naming the file and, where it applies, the line
// or the offending token id.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '../../src/data/index.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { Trainer } from '../../src/trainer/index.js';
import { loadModel } from '../../src/model/index.js';
import { makeTinyLM } from '../helpers/python.js';

let work: string;
let modelDir: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-data-errors-'));
  modelDir = await makeTinyLM(join(work, 'lm'));
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

const file = (name: string, content: string | Buffer): string => {
  const path = join(work, name);
  writeFileSync(path, content);
  return path;
};
const tokenizer = (): { nameOrPath: string } => ({ nameOrPath: modelDir });

describe('data errors', () => {
  it('an empty file', async () => {
    const path = file('empty.jsonl', '');
    await expect(loadDataset(path, { tokenizer: tokenizer() })).rejects.toThrow(`${path}: the file is empty`);
  });

  it('a malformed JSON-lines file names the line', async () => {
    const path = file('bad.jsonl', '{"text": "fine"}\n{"text": "fine too"}\n{"text": broken}\n');
    await expect(loadDataset(path, { tokenizer: tokenizer() })).rejects.toThrow(`${path} line 3: not valid JSON`);
  });

  it('a text column holding numbers', async () => {
    const path = file('numbers.jsonl', '{"text": 1}\n{"text": 2}\n');
    await expect(loadDataset(path, { tokenizer: tokenizer() })).rejects.toThrow(`${path}: column 'text' holds int64 values, not text; pass --text_column`);
  });

  it('a CSV with a header and no rows', async () => {
    const path = file('header.csv', 'text\n');
    await expect(loadDataset(path, { tokenizer: tokenizer() })).rejects.toThrow(`${path}: no rows`);
  });

  it('a .bin whose length is not a whole number of uint16 tokens', async () => {
    const path = file('odd.bin', Buffer.from([1, 0, 2]));
    await expect(loadDataset(path, { ctxLen: 1 })).rejects.toThrow(`${path}: 3 bytes, not a whole number of uint16 tokens (2 bytes each)`);
  });

  it('--split on a single local file, which has only "train"', async () => {
    const path = file('one.jsonl', '{"text": "a b c"}\n');
    await expect(loadDataset(path, { tokenizer: tokenizer(), split: 'validation' })).rejects.toThrow(`${path} is a single data file: its only split is 'train' (got --split validation)`);
  });

  it('token ids beyond the model vocabulary: when a token file loads, and at the batch that holds one', async () => {
    const ids = Uint16Array.from({ length: 64 }, (_, i) => (i === 37 ? 60_000 : i % 50));
    const path = file('tokens.bin', Buffer.from(ids.buffer));
    await expect(loadDataset(path, { ctxLen: 16, vocabSize: 200 })).rejects.toThrow(`${path}: token id 60000 at row 2, position 5 is not in the model's vocabulary of 200 tokens`);
    // Without the up-front check, the trainer's runner stops at that batch with the same facts.
    const data = await loadDataset(path, { ctxLen: 16 });
    const model = await loadModel(modelDir, { kind: 'base', device: 'cpu' });
    const trainer = new Trainer({ sae: { k: 2, numLatents: 32 }, batchSize: 1, logToWandb: false, saveDir: work, runName: 'vocab' }, data, model, { log: () => undefined });
    await expect(trainer.fit()).rejects.toThrow(`token id 60000 at row 2, position 5 of the data is not in the model's vocabulary of ${model.vocabSize} tokens`);
  });
});
