// Data: the reference's chunk_and_tokenize, shuffling, truncation, files and errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '../../src/data/dataset.js';
import { loadTokenizer } from '../../src/model/language-model.js';
import { closeRuntime, type PyObject } from '../../src/bridge/index.js';
import { makeTinyLM, py } from '../helpers/python.js';
import { CORPUS } from '../helpers/train-fixtures.js';

let work: string;
let tokenizer: PyObject;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-data-'));
  const modelDir = await makeTinyLM(join(work, 'lm'));
  tokenizer = await loadTokenizer(modelDir);
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

describe('chunk_and_tokenize', () => {
  it('joins texts with EOS (starting with one), cuts rows of ctx_len and drops the last row', async () => {
    const path = join(work, 'texts.jsonl');
    writeFileSync(path, ['alpha beta gamma', 'delta epsilon', 'zeta eta theta iota'].map((t) => JSON.stringify({ text: t })).join('\n'));
    const data = await loadDataset(path, { tokenizer, ctxLen: 8, shuffleSeed: 1 });
    const r = await py<{ rows: number[][]; want: number[][] }>(
      `
stream = tok("<|endoftext|>alpha beta gamma<|endoftext|>delta epsilon<|endoftext|>zeta eta theta iota", add_special_tokens=False)["input_ids"]
chunks = [stream[i:i + 8] for i in range(0, len(stream), 8)][:-1]
import numpy as np
perm = np.random.default_rng(1).permutation(len(chunks))
result = {"rows": rows.rows(0, len(rows)).tolist(), "want": [chunks[i] for i in perm]}`,
      { tok: tokenizer, rows: data.rows },
    );
    expect(data.ctxLen).toBe(8);
    expect(r.rows).toEqual(r.want);
    expect(r.rows.every((row) => row.length === 8)).toBe(true);
  });

  it('shuffles with shuffle_seed and truncates to max_examples', async () => {
    const a = await loadDataset(CORPUS, { tokenizer, ctxLen: 32, shuffleSeed: 42, maxExamples: 10 });
    const b = await loadDataset(CORPUS, { tokenizer, ctxLen: 32, shuffleSeed: 7, maxExamples: 10 });
    expect(a.numRows).toBe(10);
    const same = await py<boolean>('result = torch.equal(a.rows(0, 10), b.rows(0, 10))', { a: a.rows, b: b.rows });
    expect(same).toBe(false);
  });

  it('a missing text column is a clear error', async () => {
    const path = join(work, 'body.jsonl');
    writeFileSync(path, JSON.stringify({ body: 'hello there' }));
    await expect(loadDataset(path, { tokenizer, ctxLen: 8 })).rejects.toThrow(`${path}: text column 'text' not found (columns: body); pass --text_column`);
    const ok = await loadDataset(join(work, 'texts.jsonl'), { tokenizer, ctxLen: 4, textColumn: 'text' });
    expect(ok.numRows).toBeGreaterThan(0);
  });

  it('a dataset too small for one row is a clear error', async () => {
    const path = join(work, 'tiny.jsonl');
    writeFileSync(path, JSON.stringify({ text: 'hi' }));
    await expect(loadDataset(path, { tokenizer, ctxLen: 512 })).rejects.toThrow(/not enough text for one complete row of 512 tokens/);
  });
});

describe('other sources', () => {
  it('a dataset with input_ids is used as is; a save_to_disk folder is loaded from disk', async () => {
    const dir = join(work, 'saved');
    await py('import datasets\ndatasets.Dataset.from_dict({"input_ids": [[i] * 6 for i in range(20)]}).save_to_disk(path)', { path: dir });
    const data = await loadDataset(dir, { ctxLen: 99, shuffleSeed: 3, maxExamples: 5 });
    expect(data.numRows).toBe(5);
    expect(data.ctxLen).toBe(6);
  });

  it('a .bin file is a flat uint16 memmap reshaped to (-1, ctx_len)', async () => {
    const path = join(work, 'tokens.bin');
    const tokens = Uint16Array.from({ length: 100 }, (_, i) => i * 7);
    writeFileSync(path, Buffer.from(tokens.buffer));
    const data = await loadDataset(path, { ctxLen: 16 });
    expect(data.numRows).toBe(6);
    const rows = await py<number[][]>('result = r.rows(1, 3).tolist()', { r: data.rows });
    expect(rows[0]).toEqual(Array.from(tokens.slice(16, 32)));
    expect(rows[1]).toEqual(Array.from(tokens.slice(32, 48)));
    await expect(loadDataset(join(work, 'missing.bin'), { ctxLen: 16 })).rejects.toThrow(`dataset: no such file or directory: ${join(work, 'missing.bin')}`);
  });

  it('a local path that does not exist is never sent to the Hub', async () => {
    await expect(loadDataset(join(work, 'no-such-dataset'), { tokenizer, ctxLen: 8 })).rejects.toThrow(`dataset: no such file or directory: ${join(work, 'no-such-dataset')}`);
    await expect(loadDataset('./no/such.jsonl', { tokenizer, ctxLen: 8 })).rejects.toThrow('dataset: no such file or directory: ./no/such.jsonl');
  });
});
