// Downloads through @huggingface/hub against a hub-like server on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { HubError, downloadCoderFiles } from '../../src/hub/download.js';
import { CrossLayerTranscoder } from '../../src/coder/cross-layer.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { py } from '../helpers/python.js';
import { contentFetches, startHubServer, type HubServer } from '../helpers/hub-server.js';

let server: HubServer;
let work: string;
const files: Record<string, Buffer> = {};

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-hub-'));
  for (const [i, name] of ['layers.0', 'layers.1', 'layers.10'].entries()) {
    const coder = await SparseCoder.create(8, { k: 2, numLatents: 16 + 16 * i }, { seed: i });
    await coder.saveToDisk(join(work, 'src', name));
    for (const f of readdirSync(join(work, 'src', name))) files[`${name}/${f}`] = readFileSync(join(work, 'src', name, f));
  }
  const top = await SparseCoder.create(8, { k: 3, numLatents: 24 }, { seed: 9 });
  await top.saveToDisk(join(work, 'top'));
  const clt = await CrossLayerTranscoder.create(8, ['layers.0.mlp', 'layers.1.mlp'], { k: 2, numLatents: 16 }, { seed: 4 });
  await clt.saveToDisk(join(work, 'clt'));
  const cltFiles: Record<string, Buffer> = { 'cfg.json': readFileSync(join(work, 'clt', 'cfg.json')), 'README.md': Buffer.from('# clt') };
  for (const layer of clt.layers) cltFiles[`${layer}/sae.safetensors`] = readFileSync(join(work, 'clt', layer, 'sae.safetensors'));
  server = await startHubServer({
    'org/clt': { files: cltFiles },
    'org/saes': { files: { ...files, 'README.md': Buffer.from('# saes') } },
    'org/single': { files: { 'cfg.json': readFileSync(join(work, 'top', 'cfg.json')), 'sae.safetensors': readFileSync(join(work, 'top', 'sae.safetensors')) } },
    'org/private': { files, token: 'hf_secret' },
  });
});
afterAll(async () => {
  closeRuntime();
  await server.close();
  rmSync(work, { recursive: true, force: true });
});

describe('loadFromHub', () => {
  it('fetches only the hookpoint files, loads them, and does not fetch cached files again', async () => {
    const cacheDir = join(work, 'cache1');
    server.requests.length = 0;
    const coder = await SparseCoder.loadFromHub('org/saes', { hookpoint: 'layers.1', endpoint: server.url, cacheDir });
    expect(coder.numLatents).toBe(32);
    const fileRequests = server.requests.filter((r) => r.url.includes('/resolve/') || r.url.includes('/tree/'));
    expect(fileRequests.length).toBeGreaterThan(0);
    for (const r of fileRequests) expect(r.url).toMatch(/\/layers\.1(\/|$)/);
    expect(contentFetches(server.requests).map((r) => r.url.split('/resolve/')[1]).sort()).toEqual([`${'a'.repeat(40)}/layers.1/cfg.json`, `${'a'.repeat(40)}/layers.1/sae.safetensors`]);
    // The weights equal the published ones.
    const same = await py<boolean>(
      'from safetensors.torch import load_file\nw = load_file(src)\nresult = all(torch.equal(w[k], p[k].detach()) for k in w)',
      { src: join(work, 'src', 'layers.1', 'sae.safetensors'), p: coder.params },
    );
    expect(same).toBe(true);
    // The cache has the huggingface_hub layout, with refs/main pointing at the commit.
    expect(readFileSync(join(cacheDir, 'models--org--saes', 'refs', 'main'), 'utf8')).toBe('a'.repeat(40));

    server.requests.length = 0;
    await SparseCoder.loadFromHub('org/saes', { hookpoint: 'layers.1', endpoint: server.url, cacheDir });
    expect(contentFetches(server.requests)).toEqual([]);
  });

  it('uses the cache when the Hub cannot be reached, or when HF_HUB_OFFLINE is set', async () => {
    const cacheDir = join(work, 'cache-offline');
    await SparseCoder.loadFromHub('org/saes', { hookpoint: 'layers.10', endpoint: server.url, cacheDir });
    // Nothing listens on port 9 of loopback: a connection error, not an answer.
    const unreachable = 'http://127.0.0.1:9';
    expect((await SparseCoder.loadFromHub('org/saes', { hookpoint: 'layers.10', endpoint: unreachable, cacheDir })).numLatents).toBe(48);
    await expect(SparseCoder.loadFromHub('org/saes', { hookpoint: 'layers.0', endpoint: unreachable, cacheDir })).rejects.toThrow(/cannot reach the Hub/);
    const saved = process.env.HF_HUB_OFFLINE;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      server.requests.length = 0;
      expect((await SparseCoder.loadFromHub('org/saes', { hookpoint: 'layers.10', endpoint: server.url, cacheDir })).numLatents).toBe(48);
      expect(server.requests).toEqual([]);
      await expect(SparseCoder.loadFromHub('org/saes', { hookpoint: 'layers.0', endpoint: server.url, cacheDir })).rejects.toThrow(
        "'org/saes' (layers.0) is not in the Hugging Face cache and HF_HUB_OFFLINE is set",
      );
    } finally {
      if (saved === undefined) delete process.env.HF_HUB_OFFLINE;
      else process.env.HF_HUB_OFFLINE = saved;
    }
  });

  it('reads the endpoint from HF_ENDPOINT', async () => {
    const saved = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = server.url;
    try {
      server.requests.length = 0;
      const coder = await SparseCoder.loadFromHub('org/saes', { hookpoint: 'layers.0', cacheDir: join(work, 'cache2') });
      expect(coder.numLatents).toBe(16);
      expect(server.requests.length).toBeGreaterThan(0);
    } finally {
      if (saved === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = saved;
    }
  });

  it('loads a repo with a top-level cfg.json without a hookpoint', async () => {
    const coder = await SparseCoder.loadFromHub('org/single', { endpoint: server.url, cacheDir: join(work, 'cache3') });
    expect(coder.cfg.k).toBe(3);
  });

  it('a repo without a top-level cfg.json and no hookpoint fails clearly', async () => {
    const err = await SparseCoder.loadFromHub('org/saes', { endpoint: server.url, cacheDir: join(work, 'cache4') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as Error).message).toBe("'org/saes' has no top-level cfg.json; give a hookpoint (one of: layers.0, layers.1, layers.10)");
  });

  it('an unknown hookpoint or repo fails clearly', async () => {
    await expect(SparseCoder.loadFromHub('org/saes', { hookpoint: 'layers.7', endpoint: server.url, cacheDir: join(work, 'cache5') })).rejects.toThrow(/layers\.7/);
    await expect(SparseCoder.loadFromHub('org/nope', { hookpoint: 'layers.0', endpoint: server.url, cacheDir: join(work, 'cache5') })).rejects.toThrow(
      `looking up the revision for 'org/nope' at ${server.url} failed: not found`,
    );
  });

  it('sends the token, and a private repo without it is access denied', async () => {
    await expect(SparseCoder.loadFromHub('org/private', { hookpoint: 'layers.0', endpoint: server.url, cacheDir: join(work, 'cache6') })).rejects.toThrow(/access denied/);
    server.requests.length = 0;
    const coder = await SparseCoder.loadFromHub('org/private', { hookpoint: 'layers.0', endpoint: server.url, token: 'hf_secret', cacheDir: join(work, 'cache6') });
    expect(coder.numLatents).toBe(16);
    expect(server.requests.every((r) => r.auth === 'Bearer hf_secret')).toBe(true);
  });
});

describe('loadMany from the Hub', () => {
  it('downloads the matching coder directories and returns them in natural order', async () => {
    server.requests.length = 0;
    const coders = await SparseCoder.loadMany('org/saes', { endpoint: server.url, cacheDir: join(work, 'cache7'), pattern: 'layers.1*' });
    expect([...coders.keys()]).toEqual(['layers.1', 'layers.10']);
    expect(contentFetches(server.requests).some((r) => r.url.includes('layers.0'))).toBe(false);
    const all = await SparseCoder.loadMany('org/saes', { endpoint: server.url, cacheDir: join(work, 'cache7') });
    expect([...all.keys()]).toEqual(['layers.0', 'layers.1', 'layers.10']);
  });
});

describe('a cross-layer transcoder from the Hub', () => {
  it('downloads its cfg.json with its layer folders (what eval, explore and finetune take), and finds it in the cache offline', async () => {
    const cacheDir = join(work, 'cache-clt');
    const root = await downloadCoderFiles('org/clt', { endpoint: server.url, cacheDir, subdirPattern: '*' });
    const clt = await CrossLayerTranscoder.load(root);
    const saved = await CrossLayerTranscoder.load(join(work, 'clt'));
    expect(clt.layers).toEqual(['layers.0.mlp', 'layers.1.mlp']);
    expect(await py<boolean>('result = all(torch.equal(a[n], b[n]) for a, b in zip(xs, ys) for n in a)', { xs: clt.sources, ys: saved.sources })).toBe(true);
    process.env.HF_HUB_OFFLINE = '1';
    try {
      expect(await downloadCoderFiles('org/clt', { endpoint: server.url, cacheDir, subdirPattern: '*' })).toBe(root);
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
  });
});
