// Library inputs a user can get wrong: other float dtypes, devices this machine lacks.
import { afterAll, describe, expect, it } from 'vitest';
import { SparseCoder } from '../../src/coder/index.js';
import { loadModel } from '../../src/model/index.js';
import { closeRuntime, getRuntime, Tensor } from '../../src/bridge/index.js';

afterAll(() => closeRuntime());

describe('coder inputs', () => {
  it('encode and forward take float64 input, cast to the coder dtype (same results as float32)', async () => {
    const coder = await SparseCoder.create(8, { k: 2, numLatents: 16 }, { seed: 0 });
    const values = Array.from({ length: 24 }, (_, i) => Math.sin(i));
    const x32 = await Tensor.fromArray(values, [3, 8]);
    const x64 = await Tensor.fromArray(values, [3, 8], { dtype: 'float64' });
    const a = await coder.encode(x32);
    const b = await coder.encode(x64);
    expect(b.topActs.dtype).toBe('float32');
    expect(Array.from((await b.topActs.toArray()) as Float32Array)).toEqual(Array.from((await a.topActs.toArray()) as Float32Array));
    expect(await (await coder.forward(x64)).fvu.item()).toBe(await (await coder.forward(x32)).fvu.item());
  });

  it('loadMany with a local-looking path that does not exist never asks the Hub', async () => {
    await expect(SparseCoder.loadMany('./no/such/run')).rejects.toThrow('loadMany: no such file or directory: ./no/such/run');
  });

  it("a device this machine lacks is a plain error, before any work", async () => {
    const rt = await getRuntime();
    if (rt.info.cuda) return; // on a GPU machine cuda exists
    await expect(SparseCoder.create(8, { k: 2, numLatents: 16 }, { device: 'cuda' })).rejects.toThrow(`device 'cuda' is not available: this runtime's torch ${rt.info.torch} sees no CUDA GPU; use device 'cpu'`);
    await expect(loadModel('/nonexistent-but-device-first', { device: 'cuda:1' })).rejects.toThrow(/device 'cuda:1' is not available/);
    await expect(SparseCoder.create(8, { k: 2, numLatents: 16 }, { device: 'gpu' })).rejects.toThrow("device 'gpu' is not a torch device (use 'cpu', 'cuda' or 'cuda:N')");
  });
});
