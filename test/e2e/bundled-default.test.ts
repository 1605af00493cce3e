// LONG END-TO-END TEST (about two minutes): `sparsify` with no arguments, through the built
// bin, trains on the bundled model and text offline and writes loadable checkpoints; then
// `sparsify eval checkpoints/default` evaluates them on the tenth of the text left out, and
// `sparsify explore checkpoints/default` caches their latents and serves the explorer, which
// headless Chromium opens (and the static export, from file://). Screenshots go to
// test-artifacts/.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { EvalReportSchema } from '../../src/eval/index.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { exited, repoRoot, waitForLine } from '../helpers/processes.js';
import { ARTIFACTS, launchBrowser, openRoute, watchedPage } from '../helpers/browser.js';
import { readLatentCache } from '../../src/explore/index.js';
import { pathToFileURL } from 'node:url';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-default-'));
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

it('[long e2e] `sparsify` with no model trains on the bundled default and says where the checkpoints went', { timeout: 300_000 }, async () => {
  expect(existsSync(join(repoRoot, 'dist', 'cli', 'main.js'))).toBe(true); // built by npm install
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'sparsify.js')], { cwd: work, env: { ...process.env, HF_HUB_OFFLINE: '1', WANDB_MODE: 'disabled' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const { code } = await exited(child);
  expect([code, out]).toEqual([0, expect.stringContaining('Coders saved to')]);
  const runDir = join(work, 'checkpoints', 'default');
  expect(out).toContain(`Coders saved to ${runDir}`);
  const coders = await SparseCoder.loadMany(runDir);
  expect([...coders.keys()]).toEqual(['layers.0', 'layers.1', 'layers.2', 'layers.3']);
  expect(coders.get('layers.0')!.dIn).toBe(128);
  // Training made progress: the last logged fvu is well below the first.
  const lines = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  expect(lines[lines.length - 1]!['fvu/layers.1']).toBeLessThan(lines[0]!['fvu/layers.1']! * 0.8);

  // A second plain run refuses to mix with the first.
  const again = spawn(process.execPath, [join(repoRoot, 'bin', 'sparsify.js')], { cwd: work, env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let againOut = '';
  again.stderr.on('data', (d: Buffer) => (againOut += d.toString()));
  expect((await exited(again)).code).toBe(1);
  expect(againOut).toContain(`${runDir} already holds a run; pass --resume to continue it, or --overwrite`);

  // Evaluation on the held-out tenth, offline, with the run's model and text by default.
  const ev = spawn(process.execPath, [join(repoRoot, 'bin', 'sparsify.js'), 'eval', 'checkpoints/default'], { cwd: work, env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let table = '';
  let evErr = '';
  ev.stdout.on('data', (d: Buffer) => (table += d.toString()));
  ev.stderr.on('data', (d: Buffer) => (evErr += d.toString()));
  expect([(await exited(ev)).code, evErr]).toEqual([0, expect.stringContaining('(not trained on)')]);
  expect(table).toMatch(/layers\.3 +\d\.\d{4} +\d\.\d{4} +32\.0/);
  const report = EvalReportSchema.parse(JSON.parse(readFileSync(join(runDir, 'eval.json'), 'utf8')));
  expect(report.rows.start).toBeGreaterThan(0);
  expect(report.rows.end).toBe(report.rows.of);
  for (const c of Object.values(report.coders)) {
    expect(c.explained_variance).toBeGreaterThan(0.5);
    expect(c.splice!.ce_loss_recovered).toBeGreaterThan(0.5);
  }
  expect(existsSync(join(runDir, 'density.safetensors'))).toBe(true);
});

/** The app's number formats (src/explore/app/dom.ts), to compare pages with the cache. */
const num = (x: number, digits = 3): string => (x !== 0 && Math.abs(x) < 10 ** -digits ? x.toExponential(1) : x.toFixed(digits));
const pct = (x: number): string => (x === 0 ? '0%' : x < 0.0001 ? `${(x * 100).toExponential(1)}%` : `${(x * 100).toFixed(x < 0.01 ? 3 : 2)}%`);

it('[long e2e] `sparsify explore` caches the latents, serves the explorer and exports it; Chromium shows the cache\'s numbers', { timeout: 300_000 }, async () => {
  const runDir = join(work, 'checkpoints', 'default');
  expect(existsSync(join(runDir, 'metrics.jsonl'))).toBe(true); // trained by the test above
  const server = spawn(process.execPath, [join(repoRoot, 'bin', 'sparsify.js'), 'explore', 'checkpoints/default', '--no-open'], { cwd: work, env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  server.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const url = (await waitForLine(server, /^(http:\/\/127\.0\.0\.1:\d+\/)$/m, 180_000))[1]!;
  expect(log).toContain('(not trained on)');
  const cache = await readLatentCache(join(runDir, 'explore'));
  const browser = await launchBrowser();
  try {
    const { page, errors } = await watchedPage(browser);
    // Overview: a training-curve chart per metric, the eval table, a density chart per coder.
    await openRoute(page, `${url}#/`);
    expect(await page.locator('#curves .chart[data-family="fvu"] canvas').count()).toBe(1);
    expect(await page.locator('#eval tr[data-coder="layers.1"]').count()).toBe(1);
    expect(await page.locator('.coder-card').count()).toBe(4);
    const dead = Array.from(cache.table('layers.1').count).filter((c) => c === 0).length;
    expect(await page.locator('.coder-card[data-coder="layers.1"] .dead').textContent()).toBe(`${dead} never fired`);
    await page.screenshot({ path: join(ARTIFACTS, 'explore-overview.png'), fullPage: true });

    // Hookpoint page: sorted by frequency, the first row is the most frequent latent.
    await page.click('.coder-card[data-coder="layers.1"] h3 a');
    // Coder routes name the coder (#/c/1, by index, still resolves).
    await page.waitForSelector('#app[data-ready="#/c/layers.1"]');
    const table = cache.table('layers.1');
    const byFreq = Array.from(table.frequency.keys()).sort((a, b) => table.frequency[b]! - table.frequency[a]! || a - b);
    const first = page.locator('tr.latent-row').first();
    expect(await first.getAttribute('data-id')).toBe(String(byFreq[0]));
    expect(await first.locator('td').nth(1).textContent()).toBe(pct(Math.fround(table.frequency[byFreq[0]!]!)));
    expect(await first.locator('td').nth(2).textContent()).toBe(num(table.max[byFreq[0]!]!));
    expect(await page.locator('tr.latent-row').count()).toBe(50);
    // Sort by max activation, then page on.
    await page.click('th[data-sort="max"]');
    await page.waitForFunction('location.hash.includes("sort=max")');
    const byMax = Array.from(table.max.keys()).sort((a, b) => table.max[b]! - table.max[a]! || a - b);
    await page.waitForSelector(`tr.latent-row[data-id="${byMax[0]}"]`);
    await page.click('#next-page');
    await page.waitForSelector(`tr.latent-row[data-id="${byMax[50]}"]`);
    await page.screenshot({ path: join(ARTIFACTS, 'explore-table.png'), fullPage: true });

    // Latent page: header numbers and the top example against the cache.
    const id = byFreq[10]!;
    await openRoute(page, `${url}#/c/1/l/${id}`);
    const rec = cache.latent('layers.1', id);
    expect(await page.locator('#stat-count').textContent()).toBe(String(rec.count));
    expect(await page.locator('#stat-max').textContent()).toBe(num(rec.max));
    expect(await page.locator('#stat-mean').textContent()).toBe(num(rec.mean));
    expect(await page.locator('#stat-frequency').textContent()).toBe(pct(rec.frequency));
    const examples = page.locator('#top-examples .example');
    expect(await examples.count()).toBe(rec.top.length);
    expect(await examples.first().getAttribute('data-row')).toBe(String(rec.top[0]!.row));
    expect(await examples.first().locator('.act').textContent()).toBe(num(rec.top[0]!.activation));
    const centre = examples.first().locator('.tok.centre');
    expect(await centre.textContent()).toBe(cache.vocab()[rec.top[0]!.windowTokens[16]!]!.replace(/\n/g, '\u21b5') || '\u00b7');
    // (the test tsconfig has no DOM types: the browser's globals through globalThis)
    type Styled = { getComputedStyle(el: unknown): { backgroundColor: string } };
    expect(await centre.evaluate((el) => (globalThis as unknown as Styled).getComputedStyle(el).backgroundColor)).toBe('rgb(239, 108, 0)');
    expect(await page.locator('#logits-top tbody tr').count()).toBe(10);
    expect(await page.locator('#histogram canvas').count()).toBe(1);
    // The histogram's axis ends near the max activation (within two of its 50 bins), not at its power-of-two range.
    const axisEnd = Number(await page.locator('#histogram').getAttribute('data-axis-end'));
    expect(axisEnd).toBeGreaterThanOrEqual(rec.max);
    expect(axisEnd).toBeLessThanOrEqual(rec.max + (2 * rec.histogram.range) / 50);
    await page.screenshot({ path: join(ARTIFACTS, 'explore-latent.png') });
    // Through to a neighbour.
    const neighbour = rec.neighbours[0]!.id;
    await page.click(`a.neighbour[data-id="${neighbour}"]`);
    await page.waitForSelector(`#app[data-ready="#/c/layers.1/l/${neighbour}"]`);
    expect(await page.locator('#latent').getAttribute('data-id')).toBe(String(neighbour));
    expect(await page.locator('#stat-count').textContent()).toBe(String(cache.latent('layers.1', neighbour).count));
    // The served explorer runs a typed prompt through the bundled model (loaded on this first request).
    const asked = await fetch(`${url}api/prompt`, { method: 'POST', body: JSON.stringify({ text: 'Call me Ishmael.', coder: 'layers.1' }) });
    const answer = (await asked.json()) as { tokens: number[]; latents: [number, number][][] };
    expect([asked.status, answer.latents.length]).toEqual([200, answer.tokens.length]);
    expect(answer.latents[1]!.length).toBeGreaterThan(0);
    expect(log).toContain('Loading model');
    // An id out of range is a page that says so.
    await openRoute(page, `${url}#/c/1/l/4096`);
    expect(await page.locator('#not-found').textContent()).toContain('latent 4096 is out of range: layers.1 has latents 0..4095');
    expect(errors).toEqual([]);
  } finally {
    server.kill('SIGINT');
    expect((await exited(server)).code).toBe(0);
    await browser.close();
  }

  // The static export reuses the cache and opens from file://.
  const exp = spawn(process.execPath, [join(repoRoot, 'bin', 'sparsify.js'), 'explore', 'checkpoints/default', '--out', 'site'], { cwd: work, env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let expErr = '';
  exp.stderr!.on('data', (d: Buffer) => (expErr += d.toString()));
  expect([(await exited(exp)).code, expErr]).toEqual([0, expect.stringContaining('Using the latent cache in')]);
  // Packed (src/explore/packing.ts): under 25 MB for the 16,384 latents (124 MB as JSON).
  const files = readdirSync(join(work, 'site'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  const bytes = files.reduce((sum, e) => sum + statSync(join(e.parentPath, e.name)).size, 0);
  expect(bytes).toBeLessThan(25e6);
  const fileUrl = pathToFileURL(join(work, 'site', 'index.html')).href;
  const b2 = await launchBrowser();
  try {
    const { page, errors } = await watchedPage(b2);
    await openRoute(page, `${fileUrl}#/c/layers.2/l/7`);
    // Every panel, as served: the numbers, histogram, examples, intervals, logit effects, neighbours.
    const seven = cache.latent('layers.2', 7);
    expect(await page.locator('#stat-count').textContent()).toBe(String(seven.count));
    expect(await page.locator('#stat-mean').textContent()).toBe(num(seven.mean));
    expect(await page.locator('#histogram canvas').count()).toBe(1);
    expect(await page.locator('#top-examples .example').count()).toBe(seven.top.length);
    expect(await page.locator('#intervals .example').count()).toBe(seven.intervals.reduce((n, iv) => n + iv.examples.length, 0));
    expect(await page.locator('#top-examples .example').first().locator('.tok').allTextContents()).toEqual(seven.top[0]!.windowTokens.filter((t) => t >= 0).map((t) => cache.vocab()[t]!.replace(/\n/g, '\u21b5') || '\u00b7'));
    expect(await page.locator('#logits-bottom tbody tr').count()).toBe(10);
    expect(await page.locator('#neighbours li').count()).toBe(seven.neighbours.length);
    await openRoute(page, `${fileUrl}#/c/2`);
    expect(await page.locator('tr.latent-row').count()).toBe(50);
    await page.screenshot({ path: join(ARTIFACTS, 'explore-static-table.png') });
    await openRoute(page, `${fileUrl}#/c/9`);
    expect(await page.locator('#not-found').textContent()).toContain('no coder 9');
    expect(errors).toEqual([]);
  } finally {
    await b2.close();
    cache.close();
  }
});
