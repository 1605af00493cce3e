// The reference README's "gather latent activations" example, in TypeScript.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CausalLM, gatherLatentActivations } from '../../src/model/causal-lm.js';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { makeTinyLM, py } from '../helpers/python.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-gather-'));
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

describe('using coders on a model', () => {
  for (const arch of ['gpt_neox', 'llama', 'gpt2'] as const) {
    it(`loads a causal LM by path, runs it on text and encodes every layer: ${arch}`, async () => {
      const modelDir = await makeTinyLM(join(work, arch), { arch, hidden: 32, layers: 2 });
      const saeDir = join(work, `${arch}-saes`);
      for (let i = 0; i <= 2; i++) {
        const coder = await SparseCoder.create(32, { k: 4, expansionFactor: 2 }, { seed: i });
        await coder.saveToDisk(join(saeDir, `layers.${i}`));
      }
      const lm = await CausalLM.load(modelDir);
      const saes = await SparseCoder.loadMany(saeDir);
      const text = 'Hello, world!';
      const latents = await gatherLatentActivations(lm, saes, text);
      expect([...latents.keys()]).toEqual(['layers.0', 'layers.1', 'layers.2']);
      const ids = await lm.tokenize(text);
      const tokens = ids.shape[1]!;
      expect(tokens).toBeGreaterThan(1);
      for (const [name, enc] of latents) {
        expect(enc.topActs.shape).toEqual([tokens, 4]);
        // Same as encoding the hidden state by hand in Python.
        const i = Number(name.split('.')[1]);
        const diff = await py<number>(
          'with torch.inference_mode():\n  h = model(input_ids=ids, output_hidden_states=True).hidden_states[i].flatten(0, 1)\n  pre = torch.relu((h - p["b_dec"]) @ p["encoder.weight"].T + p["encoder.bias"])\n  want = pre.topk(4, sorted=True).values\nresult = (acts.sort(-1, descending=True).values - want).abs().max().item()',
          { model: lm.model, ids, i, p: saes.get(name)!.params, acts: enc.topActs },
        );
        expect(diff).toBeLessThan(1e-5);
      }
    });
  }

  it('a model path that does not exist is a clear error', async () => {
    await expect(CausalLM.load(join(work, 'missing-model'))).rejects.toThrow(`model: no such file or directory: ${join(work, 'missing-model')}`);
  });
});
