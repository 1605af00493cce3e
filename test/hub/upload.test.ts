// sparsify upload against the hub-like server on 127.0.0.1 (its upload endpoints: whoami, repo
// creation, preupload, LFS batch and basic transfers, NDJSON commits): one commit with every
// coder, the run's config and eval report and a model card; loadMany of the repo then gives
// bit-identical weights; tokens missing or rejected are one line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { uploadRun } from '../../src/hub/upload.js';
import { runCli } from '../helpers/cli.js';
import { py } from '../helpers/python.js';
import { startHubServer, type HubServer } from '../helpers/hub-server.js';

const TOKEN = 'hf_write_test';
let server: HubServer;
let work: string;
let run: string;
const repos: Parameters<typeof startHubServer>[0] = {};
const saved = { HF_TOKEN: process.env.HF_TOKEN, HF_TOKEN_PATH: process.env.HF_TOKEN_PATH };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-upload-'));
  run = join(work, 'run');
  for (const [i, name] of ['layers.0', 'layers.1'].entries()) {
    const coder = await SparseCoder.create(8, { k: 2, numLatents: 16 + 16 * i }, { seed: i });
    await coder.saveToDisk(join(run, name));
  }
  writeFileSync(join(run, 'config.json'), JSON.stringify({ model: 'EleutherAI/pythia-70m', dataset: 'EleutherAI/SmolLM2-135M-10B', ctx_len: 16 }));
  writeFileSync(join(run, 'eval.json'), JSON.stringify({ coders: { 'layers.0': { fvu: 0.1234, l0: 2, splice: { ce_loss_recovered: 0.9 } }, 'layers.1': { fvu: 0.2, l0: 2, splice: null } } }));
  server = await startHubServer(repos, { writeToken: TOKEN });
  delete process.env.HF_TOKEN;
  process.env.HF_TOKEN_PATH = join(work, 'no-token-file');
});
afterAll(async () => {
  closeRuntime();
  await server.close();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(work, { recursive: true, force: true });
});

const FILES = ['README.md', 'layers.0/cfg.json', 'layers.0/sae.safetensors', 'layers.1/cfg.json', 'layers.1/sae.safetensors', 'config.json', 'eval.json'];

describe('sparsify upload', () => {
  it('--dry_run lists the files and sends nothing, without a token', async () => {
    server.requests.length = 0;
    const r = await uploadRun(run, 'me/coders', { dryRun: true, endpoint: server.url });
    expect(r.files).toEqual(FILES);
    expect(server.requests).toEqual([]);
  });

  it('creates the repo (private), sends everything in one commit, and loadMany gives bit-identical weights', async () => {
    const r = await uploadRun(run, 'me/coders', { token: TOKEN, endpoint: server.url, private: true });
    expect(r.created).toBe(true);
    expect(r.commit?.oid).toMatch(/^[0-9a-f]{40}$/);
    expect(repos['me/coders']!.private).toBe(true);
    expect(server.commits).toHaveLength(1);
    expect(server.commits[0]!.paths.sort()).toEqual([...FILES].sort());
    // The weights went through LFS, byte for byte.
    for (const f of FILES.filter((p) => p !== 'README.md')) expect(repos['me/coders']!.files[f]!.equals(readFileSync(join(run, f)))).toBe(true);
    expect(server.requests.some((q) => q.url.endsWith('.git/info/lfs/objects/batch'))).toBe(true);
    const card = repos['me/coders']!.files['README.md']!.toString();
    expect(card).toMatch(/^---\nlibrary_name: sparsify\ntags:\n- sparsify\n- sparse-autoencoder\nbase_model: "EleutherAI\/pythia-70m"\n/);
    expect(card).toContain('| layers.0 | topk | 2 | 16 | 8 | no | no | 0.1234 | 2.0 | 0.9000 |');
    expect(card).toContain('| layers.1 | topk | 2 | 32 | 8 | no | no | 0.2000 | 2.0 | - |');

    const loaded = await SparseCoder.loadMany('me/coders', { endpoint: server.url, cacheDir: join(work, 'cache-1') });
    expect([...loaded.keys()]).toEqual(['layers.0', 'layers.1']);
    for (const [name, coder] of loaded) {
      const same = await py<boolean>('from safetensors.torch import load_file\nw = load_file(src)\nresult = set(w) == set(p) and all(torch.equal(w[k], p[k].detach()) for k in w)', { src: join(run, name, 'sae.safetensors'), p: coder.params });
      expect(same).toBe(true);
    }
  });

  it('updates an existing repo in one more commit', async () => {
    const r = await uploadRun(run, 'me/coders', { token: TOKEN, endpoint: server.url });
    expect(r.created).toBe(false);
    expect(server.commits).toHaveLength(2);
    expect(server.commits[1]!.paths).toHaveLength(FILES.length);
  });

  it('a missing token, a rejected one and a bad repo id are one line each; the CLI exits 1', async () => {
    await expect(uploadRun(run, 'me/coders', { endpoint: server.url })).rejects.toThrow(/^no Hugging Face token: give --hf_token, set HF_TOKEN, or log in/);
    await expect(uploadRun(run, 'me/coders', { token: 'hf_wrong', endpoint: server.url })).rejects.toThrow(/^checking the token at http:\/\/127\.0\.0\.1:\d+ failed: the Hub rejected the token \(401\)$/);
    await expect(uploadRun(run, 'coders', { token: TOKEN, endpoint: server.url })).rejects.toThrow(/^repo id "coders" is not of the form owner\/name$/);
    // The token file huggingface-cli login writes is read.
    writeFileSync(join(work, 'token'), `${TOKEN}\n`);
    process.env.HF_TOKEN_PATH = join(work, 'token');
    try {
      expect((await uploadRun(run, 'me/other', { endpoint: server.url })).created).toBe(true);
    } finally {
      process.env.HF_TOKEN_PATH = join(work, 'no-token-file');
    }
    const endpoint = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = server.url;
    let cli: Awaited<ReturnType<typeof runCli>>;
    try {
      cli = await runCli(['upload', run, 'me/coders', '--hf_token', 'hf_wrong']);
    } finally {
      if (endpoint === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = endpoint;
    }
    expect(cli.code).toBe(1);
    expect(cli.err).toMatch(/^sparsify upload: checking the token at .* failed: the Hub rejected the token \(401\)\n$/);
  });
});
