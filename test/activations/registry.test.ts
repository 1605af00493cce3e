// The activation registry is what the config, sweeps and --help offer; and its seam for
// activations to come: an activation with its own selection and the 'positive-entries'
// gradient rule gets, through the fused encoder, the gradients autograd gives the plain
// formula (padded rows' zero slots pass none).
import { afterAll, describe, expect, it } from 'vitest';
import { ACTIVATION_NAMES, ACTIVATIONS, activation, type Activation } from '../../src/activations/index.js';
import { closeRuntime, type Tensor } from '../../src/bridge/index.js';
import { SparseCoderConfigSchema, trainConfig, variantsOf } from '../../src/config/index.js';
import { In, defineProgram, runProgram } from '../../src/kernels/index.js';
import { fusedEncoderOf } from '../../src/math/index.js';
import { py, randn } from '../helpers/python.js';

afterAll(() => closeRuntime());

/** topk, then every kept value at or below 1.5 set to 0: rows with fewer than k actives, padded. */
const thresholded: Activation = {
  name: 'test_thresholded_topk',
  summary: 'the k largest latents above 1.5',
  className: 'TestThresholdedTopK',
  check: () => undefined,
  select(_f, preacts, k) {
    const { values, indices } = preacts.topk(k, { dim: -1, sorted: false });
    return { values: values.mul(values.gt(1.5).typeAs(values)), indices };
  },
  backward: 'positive-entries',
  padded: true,
  usesK: true,
  inference: 'own',
  params: [],
};

describe('activation registry', () => {
  it('the config, sweeps and --help offer exactly the registered activations, the default first', () => {
    expect(ACTIVATION_NAMES[0]).toBe('topk');
    expect(ACTIVATION_NAMES).toEqual(expect.arrayContaining(['topk', 'groupmax']));
    expect(SparseCoderConfigSchema.shape.activation.unwrap().options).toEqual(ACTIVATION_NAMES);
    expect(SparseCoderConfigSchema.parse({}).activation).toBe(ACTIVATIONS[0]!.name);
    expect(variantsOf(trainConfig({ sweep: ['activation=topk,groupmax'], sae: { k: 4 } })).map((v) => v.sae.activation)).toEqual(['topk', 'groupmax']);
    expect(() => SparseCoderConfigSchema.parse({ activation: 'relu' })).toThrow();
  });

  it("each activation's own check names the values: groupmax needs k to divide the latents", () => {
    expect(activation('topk').check(8, 64, 'the number of latents (64)')).toBeUndefined();
    expect(activation('topk').check(80, 64, 'the number of latents (64)')).toBe('k=80 is larger than the number of latents (64); use k <= 64');
    expect(activation('groupmax').check(5, 64, 'the number of latents (64)')).toBe('groupmax needs the number of latents (64) to be divisible by k=5');
  });

  for (const backward of ['index_add', 'gemm'] as const) {
    it(`a padded selection with the positive-entries rule: gradients equal autograd of the plain formula (${backward})`, async () => {
      const [n, d, m, k] = [24, 16, 64, 8];
      const spec = defineProgram(
        `test_padded_encoder_${backward}`,
        { x: In.tensor(), weight: In.tensor(), bias: In.tensor(), g: In.tensor() },
        (f, { x, weight, bias, g }) => {
          const out = f.apply(fusedEncoderOf(thresholded, backward), { input: x, weight, bias }, { k });
          const dense = f.zerosLike(g).named('dense');
          dense.scatterAdd_(1, out.indices, out.values);
          return { loss: dense.mul(g).sum().named('loss'), values: out.values };
        },
        { grad: 'input' },
      );
      const x = await randn([n, d], 1, true);
      const weight = await py<Tensor>('result = (torch.randn(m, d, generator=torch.Generator().manual_seed(2)) / 4).requires_grad_(True)', { m, d });
      const bias = await randn([m], 3, true);
      const g = await randn([n, m], 4);
      const { loss, values } = await runProgram(spec, { x, weight, bias, g, grad: true });
      const r = await py<{ zeros: number; positive: number; loss: number; worst: number }>(
        `
loss.backward()
xs, ws, bs = (t.detach().clone().requires_grad_(True) for t in (x, weight, bias))
pre = torch.relu(xs @ ws.T + bs)
v, i = pre.topk(k, dim=-1, sorted=False)
v = v * (v > 1.5).type_as(v)
want = torch.zeros_like(g).scatter_add(1, i, v).mul(g).sum()
want.backward()
rel = lambda a, b: ((a - b).norm() / b.norm().clamp_min(1e-12)).item()
result = {"zeros": int((values == 0).sum()), "positive": int((values > 0).sum()), "loss": abs(loss.item() - want.item()),
          "worst": max(rel(x.grad, xs.grad), rel(weight.grad, ws.grad), rel(bias.grad, bs.grad))}`,
        { loss, values, x, weight, bias, g, k },
      );
      // Some rows are padded, some slots kept: the check has both kinds to tell apart.
      expect(r.zeros).toBeGreaterThan(0);
      expect(r.positive).toBeGreaterThan(0);
      expect(r.loss).toBeLessThan(1e-4);
      expect(r.worst).toBeLessThan(1e-5);
    });
  }
});
