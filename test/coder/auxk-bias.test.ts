// The AuxK loss with and without b_dec in the reconstruction of the residual.
import { afterAll, describe, expect, it } from 'vitest';
import { SparseCoder } from '../../src/coder/index.js';
import { closeRuntime, type Tensor } from '../../src/bridge/index.js';
import { py, randn } from '../helpers/python.js';

afterAll(() => closeRuntime());

describe('AuxK bias', () => {
  it('by default adds b_dec to e_hat, as the reference does (issue #132); auxkNoBias leaves it out', async () => {
    const coder = await SparseCoder.create(16, { k: 4, numLatents: 64 }, { seed: 3 });
    await py('with torch.no_grad(): p["b_dec"].copy_(torch.linspace(-1, 1, 16))', { p: coder.params });
    const x = await randn([20, 16], 4);
    const dead = await py<Tensor>('m = torch.zeros(64, dtype=torch.bool)\nm[::3] = True\nresult = m');
    const withBias = await coder.forward(x, undefined, { deadMask: dead });
    const without = await coder.forward(x, undefined, { deadMask: dead, auxkNoBias: true });
    const r = await py<{ bias: number; nobias: number }>(
      `
p = {k: v.detach() for k, v in params.items()}
pre = torch.relu((x - p["b_dec"]) @ p["encoder.weight"].T + p["encoder.bias"])
acts, idx = pre.topk(4, sorted=False)
dense = torch.zeros(20, 64).scatter(1, idx, acts)
out = dense @ p["W_dec"] + p["b_dec"]
e = x - out
tv = (x - x.mean(0)).pow(2).sum()
num_dead = int(dead.sum()); k_aux = 8; scale = min(num_dead / k_aux, 1.0)
a, i = torch.where(dead[None], pre, -torch.inf).topk(min(k_aux, num_dead), sorted=False)
partial = torch.zeros(20, 64).scatter(1, i, a) @ p["W_dec"]
result = {"bias": (scale * ((partial + p["b_dec"] - e).pow(2).sum()) / tv).item(), "nobias": (scale * ((partial - e).pow(2).sum()) / tv).item()}`,
      { params: coder.params, x, dead },
    );
    expect(await withBias.auxkLoss.item()).toBeCloseTo(r.bias, 5);
    expect(await without.auxkLoss.item()).toBeCloseTo(r.nobias, 5);
    expect(Math.abs(r.bias - r.nobias)).toBeGreaterThan(1e-2);
    // The other outputs do not depend on it.
    expect(await withBias.fvu.item()).toBe(await without.fvu.item());
  });
});
