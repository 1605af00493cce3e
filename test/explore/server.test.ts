// The explorer's server and static export over a small cache: the files it serves, what it
// says for a port in use, unknown data, an --out folder that is not an export, and a run
// without metrics.jsonl.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SparseCoder } from '../../src/coder/index.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { buildLatentCache, exportExplorer, readLatentCache, serveExplorer, SiteData } from '../../src/explore/index.js';
import { tinyFixture } from '../helpers/train-fixtures.js';
import { unpackLatents } from '../../src/explore/packing.js';
import type { LatentChunkPayload, TokensPayload } from '../../src/explore/payloads.js';

let work: string;
let cacheDir: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-explore-server-'));
  const fx = await tinyFixture(work, { rows: 12, ctxLen: 16 });
  const coder = await SparseCoder.create(32, { k: 4, numLatents: 80 }, { seed: 3 });
  const path = join(work, 'coders', 'layers.0');
  await coder.saveToDisk(path);
  cacheDir = join(work, 'coders', 'explore');
  await buildLatentCache(fx.model, [{ name: 'layers.0', hookpoint: 'layers.0', coder, path }], fx.data, cacheDir, { rows: [0, 12], batchSize: 4 });
  closeRuntime(); // serving needs no Python
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const text = async (url: string): Promise<[number, string]> => {
  const r = await fetch(url);
  return [r.status, await r.text()];
};

describe('explorer server', () => {
  it('serves the app shell and the data files, and 404s unknown data', async () => {
    const server = await serveExplorer(cacheDir, { port: 0 });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const [s1, html] = await text(server.url);
      expect(s1).toBe(200);
      expect(html).toContain('<script src="app.js"></script>');
      expect((await text(`${server.url}app.js`))[0]).toBe(200);
      const [s2, overview] = await text(`${server.url}data/overview.js`);
      expect(s2).toBe(200);
      expect(overview.startsWith('window.sparsifyData("overview", ')).toBe(true);
      // 80 latents in chunks of 32: chunks 0..2.
      expect((await text(`${server.url}data/coders/0/latents/2.js`))[0]).toBe(200);
      expect((await text(`${server.url}data/coders/0/latents/3.js`))[0]).toBe(404);
      expect((await text(`${server.url}data/coders/1/table.js`))[0]).toBe(404);
      expect((await text(`${server.url}data/../../etc/passwd`))[0]).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('packs a chunk of latents that unpacks to the cache\'s own numbers, examples and windows', async () => {
    const site = new SiteData(await readLatentCache(cacheDir), null);
    const t = site.get('tokens') as TokensPayload;
    const stream = { startRow: t.start_row, ctxLen: t.ctx_len, ids: new Int32Array(new Uint8Array(Buffer.from(t.ids, 'base64')).buffer) };
    expect([t.rows * t.ctx_len, stream.ids.length]).toEqual([12 * 16, 12 * 16]);
    let examples = 0;
    for (const n of [0, 1, 2]) {
      const chunk = site.get(`coders/0/latents/${n}`) as LatentChunkPayload;
      const bytes = new Uint8Array(Buffer.from(chunk.packed, 'base64'));
      const got = unpackLatents(bytes, chunk.start, chunk.count, { startRow: t.start_row, ctxLen: t.ctx_len, before: chunk.before, tokens: chunk.tokens, width: chunk.before + 1 + chunk.after }, stream);
      expect(got.length).toBe(n < 2 ? 32 : 16);
      got.forEach((l, i) => {
        const want = site.latent('layers.0', chunk.start + i);
        expect(l).toEqual(want);
        examples += want.top.length;
        // The windows are the cache's rows around each example, -1 outside the row.
        for (const e of want.top) expect(e.tokens).toEqual(Array.from({ length: 21 }, (_, j) => site.cache.rowTokens(e.row)[e.position - 16 + j] ?? -1));
      });
    }
    expect(examples).toBeGreaterThan(100);
    site.cache.close();
  });

  it('says when the port is in use', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(serveExplorer(cacheDir, { port })).rejects.toThrow(`port ${port} is in use on 127.0.0.1; pass another --port, or leave it out for a free one`);
    } finally {
      blocker.close();
    }
  });

  it('without the run\'s metrics.jsonl, the overview says there are no curves', async () => {
    const site = new SiteData(await readLatentCache(cacheDir), null);
    expect(site.overview().metrics).toEqual({ lines: null, message: 'these coders come without their run: no training curves to show' });
    mkdirSync(join(work, 'run'), { recursive: true });
    expect(new SiteData(site.cache, join(work, 'run')).overview().metrics.message).toBe(`${join(work, 'run')} has no metrics.jsonl: no training curves to show`);
    site.cache.close();
  });

  it('exports a static site whole, and will not write over a folder that is not one', async () => {
    const out = join(work, 'site');
    const { index, files } = await exportExplorer(cacheDir, out);
    expect(existsSync(index)).toBe(true);
    expect(files).toBe(3 + 3 + 1 + 3); // shell, overview+vocab+tokens, table, 3 latent chunks
    expect(readdirSync(join(out, 'data', 'coders', '0', 'latents')).sort()).toEqual(['0.js', '1.js', '2.js']);
    await exportExplorer(cacheDir, out); // again: replaced
    const other = join(work, 'notes');
    mkdirSync(other);
    writeFileSync(join(other, 'keep.txt'), 'mine');
    await expect(exportExplorer(cacheDir, other)).rejects.toThrow(`${other} exists and is not an explorer export`);
    expect(existsSync(join(other, 'keep.txt'))).toBe(true);
  });
});
