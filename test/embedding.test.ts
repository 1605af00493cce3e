// Using sparsify inside another app: bundled assets to try things on, plain numbers out,
// and nothing on the app's stderr that it did not ask for.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundledDefault, closeRuntime, SparseCoder, Tensor } from '../src/index.js';
import { exited, spawnTs } from './helpers/processes.js';

afterAll(() => closeRuntime());

describe('embedding sparsify', () => {
  it('exports the bundled model and text', () => {
    expect(existsSync(join(bundledDefault.model, 'config.json'))).toBe(true);
    expect(existsSync(bundledDefault.dataset)).toBe(true);
    expect(bundledDefault.settings).toEqual({ ctxLen: 128, batchSize: 16, saveEvery: 25, runName: 'default', holdout: 0.1 });
  });

  it('index tensors come back as plain numbers with toNumbers()', async () => {
    const coder = await SparseCoder.create(8, { k: 2, numLatents: 16 }, { seed: 0 });
    const { topIndices } = await coder.encode(await Tensor.fromArray(Array.from({ length: 8 }, (_, i) => i / 8), [1, 8]));
    const ids = await topIndices.toNumbers();
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(Number.isInteger(id) && id >= 0 && id < 16).toBe(true);
    const big = await Tensor.fromArray(new BigInt64Array([2n ** 60n]), [1], { dtype: 'int64' });
    await expect(big.toNumbers()).rejects.toThrow(/beyond 2\^53/);
  });

  it("the Hugging Face libraries' progress bars stay off the app's stderr", async () => {
    const work = mkdtempSync(join(tmpdir(), 'sparsify-quiet-'));
    try {
      const child = spawnTs('test/fixtures/quiet-child.ts', [work], { ...process.env, WANDB_MODE: 'disabled' });
      let err = '';
      let out = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const { code } = await exited(child);
      expect([code, out]).toEqual([0, 'DONE\n']);
      expect(err).not.toMatch(/%\||Map|Loading weights|it\/s/);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
