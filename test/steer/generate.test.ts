// Steering (src/steer): generation and logits with interventions, against plain PyTorch
// restatements run in the same runtime: greedy decoding as a loop of argmaxes, the added
// decoder row and the clamp as forward hooks written from the formulas (TopK encode, set,
// decode, keep the error). Scale 0 leaves the logits bit-identical; a large scale on a latent
// raises its top logit effect's probability; seeded sampling repeats.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import type { Tensor } from '../../src/bridge/ops.js';
import { SparseCoder } from '../../src/coder/index.js';
import { CausalLM, bundledDefault } from '../../src/model/index.js';
import { makeTinyLM, py } from '../helpers/python.js';

let work: string;
let lm: CausalLM;
let sae: SparseCoder;
const PROMPT = 'The whale swam under the ship';

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-steer-'));
  lm = await CausalLM.load(await makeTinyLM(join(work, 'lm'), { hidden: 32, layers: 2 }));
  sae = await SparseCoder.create(32, { k: 4, numLatents: 64 }, { seed: 5 });
}, 120_000);
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

/** Python: hooks written from the formulas, on the base model's module `hp`. */
const HOOKS = `
import torch
def first(o): return o[0] if isinstance(o, tuple) else o
def again(o, h): return (h, *o[1:]) if isinstance(o, tuple) else h
def add_hook(w_dec, latent, scale):
    return lambda m, a, o: again(o, first(o) + scale * w_dec[latent])
def clamp_hook(p, k, latent, value):
    def hook(m, a, o):
        h = first(o)
        y = h.flatten(0, 1)
        pre = torch.relu((y - p["b_dec"]) @ p["encoder.weight"].T + p["encoder.bias"])
        vals, idx = pre.topk(k, dim=-1)
        dense = torch.zeros_like(pre).scatter(1, idx, vals)
        recon = dense @ p["W_dec"] + p["b_dec"]
        dense[:, latent] = value
        return again(o, (dense @ p["W_dec"] + p["b_dec"] + (y - recon)).reshape(h.shape))
    return hook
def logits_with(model, ids, hp=None, hook=None):
    handle = model.base_model.get_submodule(hp).register_forward_hook(hook) if hook else None
    try:
        with torch.no_grad():
            return model(ids).logits[0].float()
    finally:
        if handle: handle.remove()
`;

describe('steering', () => {
  it('greedy generation is the argmax loop of the plain model, token for token', async () => {
    const out = await lm.generate(PROMPT, { maxNewTokens: 12, stopAtEos: false });
    const ids = await lm.tokenize(PROMPT);
    const want = await py<number[]>(
      `${HOOKS}
x = ids.clone()
new = []
for _ in range(12):
    nxt = int(logits_with(model, x)[-1].argmax())
    new.append(nxt)
    x = torch.cat([x, torch.tensor([[nxt]])], 1)
result = new`,
      { model: lm.model, ids },
    );
    expect(out.tokens).toEqual(want);
    expect(out.promptTokens).toBe(ids.shape[1]);
    expect(out.text.length).toBeGreaterThan(0);
  });

  it('an added decoder row at scale 0 leaves the logits bit-identical; at scale 3 they are the restated hook\'s', async () => {
    const plain = await lm.logits(PROMPT);
    const zero = await lm.logits(PROMPT, { interventions: [{ hookpoint: 'layers.0', coder: sae, latent: 7, scale: 0 }] });
    const three = await lm.logits(PROMPT, { interventions: [{ hookpoint: 'layers.0', coder: sae, latent: 7, scale: 3 }] });
    const [equal, diff, moved] = await py<[boolean, number, number]>(
      `${HOOKS}
want = logits_with(model, ids, "layers.0", add_hook(p["W_dec"].detach(), 7, 3.0))
result = [bool(torch.equal(plain, zero)), float((three - want).abs().max()), float((three - plain).abs().max())]`,
      { model: lm.model, ids: await lm.tokenize(PROMPT), p: sae.params, plain, zero, three },
    );
    expect(equal).toBe(true);
    expect(diff).toBeLessThan(1e-5);
    expect(moved).toBeGreaterThan(1e-2);
    // And the generated tokens, scale 0 against none.
    const a = await lm.generate(PROMPT, { maxNewTokens: 8, stopAtEos: false });
    const b = await lm.generate(PROMPT, { maxNewTokens: 8, stopAtEos: false, interventions: [{ hookpoint: 'layers.0', coder: sae, latent: 7, scale: 0 }] });
    expect(b.tokens).toEqual(a.tokens);
  });

  it('clamping a latent to its own value leaves the logits within float tolerance; clamped to 5 they are the restated hook\'s', async () => {
    const plain = await lm.logits(PROMPT);
    // A latent that does not fire on the prompt has its own value 0 everywhere.
    const quiet = await py<number>(
      `${HOOKS}
seen = {}
def keep(m, a, o):
    seen["y"] = first(o).flatten(0, 1)
h = model.base_model.get_submodule("layers.0").register_forward_hook(keep)
try:
    with torch.no_grad(): model(ids)
finally:
    h.remove()
pre = torch.relu((seen["y"] - p["b_dec"]) @ p["encoder.weight"].T + p["encoder.bias"])
fired = set(pre.topk(4, dim=-1).indices.flatten().tolist())
result = next(i for i in range(64) if i not in fired)`,
      { model: lm.model, ids: await lm.tokenize(PROMPT), p: sae.params },
    );
    const own = await lm.logits(PROMPT, { interventions: [{ hookpoint: 'layers.0', coder: sae, latent: quiet, clamp: 0 }] });
    const five = await lm.logits(PROMPT, { interventions: [{ hookpoint: 'layers.0', coder: sae, latent: 3, clamp: 5 }] });
    const [ownDiff, diff, moved] = await py<[number, number, number]>(
      `${HOOKS}
q = {k: v.detach() for k, v in p.items()}
want = logits_with(model, ids, "layers.0", clamp_hook(q, 4, 3, 5.0))
result = [float((own - plain).abs().max()), float((five - want).abs().max()), float((five - plain).abs().max())]`,
      { model: lm.model, ids: await lm.tokenize(PROMPT), p: sae.params, plain, own, five },
    );
    expect(ownDiff).toBeLessThan(1e-4);
    expect(diff).toBeLessThan(1e-4);
    expect(moved).toBeGreaterThan(1e-2);
  });

  it('a large scale on a latent raises the probability of the token its decoder row most promotes (the bundled model)', async () => {
    // A trained model (the tiny random one's logits are near uniform whatever the residual holds).
    const bundled = await CausalLM.load(bundledDefault.model);
    const coder = await SparseCoder.create(128, { k: 8, numLatents: 256 }, { seed: 2 });
    const prompt = 'Call me Ishmael. Some years ago';
    for (const latent of [11, 40, 97]) {
      const top = await py<number>('result = int((p["W_dec"][latent] @ model.get_output_embeddings().weight.T).argmax())', { p: coder.params, model: bundled.model, latent });
      const prob = (logits: Tensor): Promise<number> => py<number>('result = float(l[-1].softmax(-1)[t])', { l: logits, t: top });
      const steer = [{ hookpoint: 'layers.3', coder, latent, scale: 60 }];
      const before = await prob(await bundled.logits(prompt));
      const after = await prob(await bundled.logits(prompt, { interventions: steer }));
      // From about 2e-4 to 0.07..0.7 for these latents.
      expect(after).toBeGreaterThan(100 * before);
      // Where T becomes the most likely next token, greedy generation says it.
      if (after > 0.5) expect((await bundled.generate(prompt, { maxNewTokens: 1, interventions: steer })).tokens).toEqual([top]);
    }
  });

  it('sampling with a seed repeats; another seed gives another text; the draw is softmax(logits / T) by Gumbel-max', async () => {
    const a = await lm.generate(PROMPT, { maxNewTokens: 16, temperature: 1.5, seed: 4, stopAtEos: false });
    const b = await lm.generate(PROMPT, { maxNewTokens: 16, temperature: 1.5, seed: 4, stopAtEos: false });
    const c = await lm.generate(PROMPT, { maxNewTokens: 16, temperature: 1.5, seed: 5, stopAtEos: false });
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
    const want = await py<number[]>(
      `${HOOKS}
x = ids.clone()
new = []
for step in range(16):
    last = logits_with(model, x)[-1:]
    u = torch.rand(last.shape, generator=torch.Generator().manual_seed(4 * 1000003 + step))
    nxt = int((last / 1.5 - torch.log(-torch.log(u))).argmax())
    new.append(nxt)
    x = torch.cat([x, torch.tensor([[nxt]])], 1)
result = new`,
      { model: lm.model, ids: await lm.tokenize(PROMPT) },
    );
    expect(a.tokens).toEqual(want);
  });

  it('bad interventions and prompts are one line each', async () => {
    const gen = (o: object): Promise<unknown> => lm.generate(PROMPT, { maxNewTokens: 2, ...o });
    await expect(gen({ interventions: [{ hookpoint: 'layers.0', coder: sae, latent: 64, scale: 1 }] })).rejects.toThrow('intervention 0 (layers.0:64): latent 64 is out of range: the coder has latents 0..63');
    await expect(gen({ interventions: [{ hookpoint: 'layers.0', coder: sae, latent: 1, scale: 1, clamp: 2 }] })).rejects.toThrow('intervention 0 (layers.0:1): give exactly one of scale and clamp');
    await expect(gen({ interventions: [{ hookpoint: 'layers.9', coder: sae, latent: 1, scale: 1 }] })).rejects.toThrow("the model has no module 'layers.9' (a coder's hookpoint)");
    await expect(gen({ interventions: [{ hookpoint: 'layers.0', coder: sae, latent: 1, scale: 1 }, { hookpoint: 'layers.0', coder: sae, latent: 2, clamp: 1 }] })).rejects.toThrow('one intervention per hookpoint');
    const wide = await SparseCoder.create(16, { k: 2, numLatents: 8 });
    await expect(gen({ interventions: [{ hookpoint: 'layers.0', coder: wide, latent: 1, scale: 1 }] })).rejects.toThrow("has d_in=16 but 'layers.0' of this model has width 32");
    await expect(lm.generate('', {})).rejects.toThrow('the prompt is empty');
    await expect(gen({ maxNewTokens: -1 })).rejects.toThrow('maxNewTokens');
    await expect(lm.generate(PROMPT, { maxNewTokens: 600 })).rejects.toThrow(/new tokens make \d+; this model takes at most 512/);
  });
});
