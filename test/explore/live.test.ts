// The served explorer's model (src/explore/live.ts): a typed prompt's latents against the
// coder's own encode of the model's hidden states, the steering panel's texts against
// CausalLM.generate, the caps and the busy answer over HTTP; then Chromium types into the
// overview's and a latent page's prompt box and the steering panel, and the static export
// says the box needs the server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { closeRuntime } from '../../src/bridge/index.js';
import { CrossLayerTranscoder, SparseCoder } from '../../src/coder/index.js';
import { buildLatentCache, crossLayerLiveCoders, exportExplorer, LiveExplorer, serveExplorer, type ExplorerServer, type LiveModels, type PromptReply } from '../../src/explore/index.js';
import { CausalLM, loadModel, loadTokenizer } from '../../src/model/index.js';
import { loadDataset } from '../../src/data/index.js';
import { CORPUS } from '../helpers/train-fixtures.js';
import { makeTinyLM, py } from '../helpers/python.js';
import { ARTIFACTS, launchBrowser, openRoute, watchedPage } from '../helpers/browser.js';

let work: string;
let cacheDir: string;
let lm: CausalLM;
let coder: SparseCoder;
let server: ExplorerServer;
const TEXT = 'The whale swam under the ship and the sea';

const models = (): Promise<LiveModels> => Promise.resolve({ lm, coders: new Map([['layers.0', { hookpoint: 'layers.0', coder }]]) });
const post = async (path: string, body: unknown): Promise<[number, Record<string, unknown>]> => {
  const r = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return [r.status, (await r.json()) as Record<string, unknown>];
};

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-explore-live-'));
  const modelDir = await makeTinyLM(join(work, 'lm'));
  lm = await CausalLM.load(modelDir);
  coder = await SparseCoder.create(32, { k: 4, numLatents: 48 }, { seed: 2 });
  const path = join(work, 'coders', 'layers.0');
  await coder.saveToDisk(path);
  const model = await loadModel(modelDir, { kind: 'causal_lm', device: 'cpu' });
  const tokenizer = await loadTokenizer(modelDir);
  const data = await loadDataset(CORPUS, { tokenizer, ctxLen: 16, maxExamples: 8 });
  cacheDir = join(work, 'coders', 'explore');
  await buildLatentCache(model, [{ name: 'layers.0', hookpoint: 'layers.0', coder, path }], data, cacheDir, { rows: [0, 8], batchSize: 4, tokenizer });
  server = await serveExplorer(cacheDir, { port: 0, live: new LiveExplorer(models, { coderNames: ['layers.0'], maxChars: 200, maxTokens: 64, maxNewTokens: 8 }) });
}, 120_000);
afterAll(async () => {
  await server?.close();
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

describe('served explorer: typed prompts and steering', () => {
  it("a prompt's latents are the coder's encode of the hookpoint's output, token by token", async () => {
    const [status, reply] = await post('api/prompt', { text: TEXT, coder: 'layers.0' });
    expect(status).toBe(200);
    const { tokens, latents } = reply as unknown as PromptReply;
    expect(tokens).toEqual(await (await lm.tokenize(TEXT)).toNumbers());
    const enc = await coder.encode((await lm.hiddenStates(TEXT))[1]!);
    const acts = (await enc.topActs.toArray()) as Float32Array;
    const ids = await enc.topIndices.toNumbers();
    tokens.forEach((_, t) => {
      const want = [0, 1, 2, 3].map((j) => [ids[t * 4 + j]!, acts[t * 4 + j]!] as [number, number]).filter(([, a]) => a > 0).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
      expect(latents[t]!.map(([l]) => l)).toEqual(want.map(([l]) => l));
      latents[t]!.forEach(([, a], j) => expect(a).toBeCloseTo(want[j]![1], 5));
    });
  });

  it('the steering panel: scale 0 gives the plain text twice; a clamp gives what CausalLM.generate gives', async () => {
    const [s0, zero] = await post('api/steer', { text: TEXT, coder: 'layers.0', latent: 3, scale: 0, max_new_tokens: 6 });
    const plain = (await lm.generate(TEXT, { maxNewTokens: 6 })).text;
    expect([s0, zero]).toEqual([200, { without: plain, with: plain }]);
    const [s1, clamped] = await post('api/steer', { text: TEXT, coder: 'layers.0', latent: 3, clamp: 12, max_new_tokens: 6 });
    const want = (await lm.generate(TEXT, { maxNewTokens: 6, interventions: [{ hookpoint: 'layers.0', coder, latent: 3, clamp: 12 }] })).text;
    expect([s1, clamped]).toEqual([200, { without: plain, with: want }]);
  });

  it("a cross-layer transcoder's latent steers at every layer it writes to (its decoder row for each), as plain hooks do; clamping it is refused", async () => {
    const clt = await CrossLayerTranscoder.create(32, ['layers.0.mlp', 'layers.1.mlp'], { k: 4, numLatents: 48 }, { seed: 3 });
    await py('torch.manual_seed(0)\nfor p in ps:\n    p["W_dec"].data.normal_()', { ps: clt.sources });
    const coders = await crossLayerLiveCoders(clt);
    const live = new LiveExplorer(() => Promise.resolve({ lm, coders }), { coderNames: clt.layers });
    const interventions = coders.get('layers.0.mlp')!.targets!.map((t) => ({ hookpoint: t.hookpoint, coder: t.coder, latent: 5, scale: 3 }));
    expect(interventions.map((iv) => iv.hookpoint)).toEqual(['layers.0.mlp', 'layers.1.mlp']);
    const steered = await lm.logits(TEXT, { interventions });
    const diff = await py<number>(
      `def add(row):
    return lambda m, a, o: o + 3.0 * row
hs = [model.base_model.get_submodule(f"layers.{j}.mlp").register_forward_hook(add(p["W_dec"][5, j].detach())) for j in (0, 1)]
try:
    with torch.no_grad():
        want = model(ids).logits[0].float()
finally:
    for h in hs: h.remove()
result = float((want - steered).abs().max())`,
      { model: lm.model, ids: await lm.tokenize(TEXT), p: clt.sources[0], steered },
    );
    expect(diff).toBeLessThan(1e-5);
    const reply = await live.steer({ text: TEXT, coder: 'layers.0.mlp', latent: 5, scale: 3, max_new_tokens: 6 });
    expect(reply.with).toBe((await lm.generate(TEXT, { maxNewTokens: 6, interventions })).text);
    await expect(live.steer({ text: TEXT, coder: 'layers.1.mlp', latent: 5, clamp: 2 })).rejects.toThrow("layers.1.mlp is a cross-layer transcoder's source: its latents steer by scale (added at each layer they write to), not clamp");
  });

  it('caps, bad requests and a busy model are one line, with their status', async () => {
    expect(await post('api/prompt', { text: 'x'.repeat(201), coder: 'layers.0' })).toEqual([400, { error: 'the prompt is 201 characters; the explorer takes at most 200' }]);
    expect(await post('api/prompt', { text: 'the sea '.repeat(20), coder: 'layers.0' })).toEqual([400, { error: expect.stringMatching(/^the prompt is \d+ tokens; the explorer takes at most 64$/) }]);
    expect(await post('api/prompt', { text: '  ', coder: 'layers.0' })).toEqual([400, { error: 'the prompt is empty: type some text' }]);
    expect(await post('api/prompt', { text: TEXT, coder: 'layers.5' })).toEqual([400, { error: 'no coder layers.5: this explorer has layers.0' }]);
    expect(await post('api/steer', { text: TEXT, coder: 'layers.0', latent: 48, scale: 1 })).toEqual([400, { error: 'intervention 0 (layers.0:48): latent 48 is out of range: the coder has latents 0..47' }]);
    expect(await post('api/steer', { text: TEXT, coder: 'layers.0', latent: 1, scale: 1, max_new_tokens: 9 })).toEqual([400, { error: 'max_new_tokens 9: the explorer generates at most 8' }]);
    expect((await post('api/steer', { text: TEXT, coder: 'layers.0', latent: 1 }))[0]).toBe(400);

    // One runs, one waits, the third is told the model is busy; then both finish.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = await serveExplorer(cacheDir, { port: 0, live: new LiveExplorer(async () => (await gate, models()), { coderNames: ['layers.0'], maxWaiting: 1 }) });
    try {
      const ask = (): Promise<Response> => fetch(`${slow.url}api/prompt`, { method: 'POST', body: JSON.stringify({ text: TEXT, coder: 'layers.0' }) });
      const first = ask();
      const second = ask();
      await new Promise((r) => setTimeout(r, 100));
      const third = await ask();
      expect([third.status, await third.json()]).toEqual([503, { error: 'the model is busy with 2 other prompts; try again in a moment' }]);
      release();
      expect([(await first).status, (await second).status]).toEqual([200, 200]);
    } finally {
      await slow.close();
    }
    // Without a model attached the api says how to get one.
    const bare = await serveExplorer(cacheDir, { port: 0 });
    try {
      const r = await fetch(`${bare.url}api/prompt`, { method: 'POST', body: '{}' });
      expect([r.status, ((await r.json()) as { error: string }).error]).toEqual([404, expect.stringContaining('no model attached')]);
    } finally {
      await bare.close();
    }
  });

  it('in Chromium: the overview box links each token\'s latents, the latent page colours the prompt, the steering panel shows both texts; a static export says it needs the server', async () => {
    const [, reply] = await post('api/prompt', { text: TEXT, coder: 'layers.0' });
    const { tokens, latents } = reply as unknown as PromptReply;
    const browser = await launchBrowser();
    try {
      const { page, errors } = await watchedPage(browser);
      await openRoute(page, server.url);
      await page.fill('#prompt-text', TEXT);
      await page.click('#prompt-run');
      await page.waitForSelector('#prompt-out[data-done="1"]');
      expect(await page.locator('tr.prompt-token').count()).toBe(tokens.length);
      const t = latents.findIndex((row) => row.length > 0);
      const first = latents[t]![0]![0];
      const link = page.locator('tr.prompt-token').nth(t).locator('.live-latent a').first();
      expect(await link.getAttribute('data-id')).toBe(String(first));
      await page.screenshot({ path: join(ARTIFACTS, 'explore-prompt-overview.png'), fullPage: true });
      await link.click();
      await page.waitForSelector(`#app[data-ready="#/c/layers.0/l/${first}"]`);
      await page.fill('#prompt-text', TEXT);
      await page.click('#prompt-run');
      await page.waitForSelector('#prompt-out[data-done="1"]');
      const shown = (await page.locator('#prompt-out .tok').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-act'))))) as number[];
      expect(shown).toEqual(latents.map((row) => row.find(([l]) => l === first)?.[1] ?? 0));
      await page.fill('#steer-text', TEXT);
      await page.fill('#steer-value', '0');
      await page.fill('#steer-tokens', '5');
      await page.click('#steer-run');
      await page.waitForSelector('#steer-out[data-done="1"]');
      const plain = (await lm.generate(TEXT, { maxNewTokens: 5 })).text;
      expect([await page.locator('#steer-without').textContent(), await page.locator('#steer-with').textContent()]).toEqual([TEXT + plain, TEXT + plain]);
      await page.screenshot({ path: join(ARTIFACTS, 'explore-prompt-latent.png'), fullPage: true });
      expect(errors).toEqual([]);

      const out = join(work, 'site');
      await exportExplorer(cacheDir, out);
      await openRoute(page, pathToFileURL(join(out, 'index.html')).href);
      expect(await page.locator('#live-static').textContent()).toContain('needs the server');
      await openRoute(page, `${pathToFileURL(join(out, 'index.html')).href}#/c/layers.0/l/${first}`);
      expect([await page.locator('#live-static').count(), await page.locator('#steer').count()]).toEqual([1, 0]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
