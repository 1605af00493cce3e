/**
 * The explorer served locally (hono on Node's http server) or written out as a static site.
 * Both give the same files: the app shell (index.html, app.js, app.css from
 * dist/explore-app), and data/<path>.js from the cache (site.ts). Everything is local: no
 * CDN, no network.
 */
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { SparsifyError } from '../bridge/errors.js';
import { packageRoot } from '../bridge/paths.js';
import { findRunConfig } from '../coder/discover.js';
import { readLatentCache, type LatentCache } from './latent-cache.js';
import { SiteData } from './site.js';
import { LiveBusyError, type LiveExplorer } from './live.js';
import type { LiveError } from './payloads.js';
import type { Context } from 'hono';
import { stageFolder } from '../util/staging.js';

const APP_DIR = join(packageRoot, 'dist', 'explore-app');

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sparsify explore</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="app.css">
</head>
<body>
<div id="app"><main><p class="meta">Loading\u2026</p></main></div>
<script src="app.js"></script>
</body>
</html>
`;

function appFile(name: 'app.js' | 'app.css'): string {
  const path = join(APP_DIR, name);
  if (!existsSync(path)) throw new SparsifyError(`the explorer app is not built (${path} is missing); run \`npm run build\` in ${packageRoot}`);
  return readFileSync(path, 'utf8');
}

/** The run a cache belongs to: the folder above it, when that holds the run's config.json. */
function runDirOf(cacheDir: string): string | null {
  const found = findRunConfig(dirname(resolve(cacheDir)));
  return found ? found.dir : null;
}

export interface ExplorerOptions {
  /** The run directory whose metrics.jsonl and eval.json the overview shows (default: the cache's parent, if a run). */
  runDir?: string | null;
}

export interface ServeExplorerOptions extends ExplorerOptions {
  /** Run typed prompts and the steering panel through this (else the pages say no model is attached). */
  live?: LiveExplorer;
  /** Default 0: a free port. */
  port?: number;
  /** Default 127.0.0.1: this machine only. */
  host?: string;
}

/** A running explorer. */
export interface ExplorerServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A live request's answer: its reply, or `{ error }` (400 a bad request, 503 the model busy, 500 a failure). */
async function answer(c: Context, live: LiveExplorer | undefined, run: (live: LiveExplorer, body: never) => Promise<unknown>): Promise<Response> {
  const fail = (error: string, status: 400 | 404 | 500 | 503): Response => c.json({ error } satisfies LiveError, status);
  if (!live) return fail('this explorer has no model attached: `sparsify explore RUN` serves one that runs prompts', 404);
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return fail('the request is not JSON', 400);
  }
  try {
    return c.json(await run(live, body as never));
  } catch (err) {
    if (err instanceof LiveBusyError) return fail(err.message, 503);
    return fail((err as Error).message, err instanceof SparsifyError ? 400 : 500);
  }
}

/** The explorer's routes over a cache (the hono app, for embedding in another server); with `live`, api/prompt and api/steer. */
export function explorerApp(site: SiteData, live?: LiveExplorer): Hono {
  const app = new Hono();
  const js = appFile('app.js');
  const css = appFile('app.css');
  app.get('/', (c) => c.html(INDEX_HTML));
  app.get('/index.html', (c) => c.html(INDEX_HTML));
  app.get('/app.js', (c) => c.body(js, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/app.css', (c) => c.body(css, 200, { 'content-type': 'text/css; charset=utf-8' }));
  app.get('/data/*', (c) => {
    const path = c.req.path.slice('/data/'.length).replace(/\.js$/, '');
    let text: string | undefined;
    try {
      text = site.script(path);
    } catch (err) {
      return c.text(`// ${(err as Error).message}\n`, 500);
    }
    return text === undefined ? c.text(`// no data file ${path}\n`, 404) : c.body(text, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' });
  });
  app.post('/api/prompt', (c) => answer(c, live, (l, body) => l.prompt(body)));
  app.post('/api/steer', (c) => answer(c, live, (l, body) => l.steer(body)));
  return app;
}

async function openSite(cacheOrDir: LatentCache | string, options: ExplorerOptions & { live?: LiveExplorer | undefined }): Promise<SiteData> {
  const cache = typeof cacheOrDir === 'string' ? await readLatentCache(cacheOrDir) : cacheOrDir;
  return new SiteData(cache, options.runDir === undefined ? runDirOf(cache.dir) : options.runDir, options.live?.limits ?? null);
}

/**
 * Serve the explorer over the cache in `dir` (or an open cache).
 *
 * @example
 * const server = await serveExplorer('checkpoints/default/explore', { port: 0 });
 * console.log(server.url);
 * await server.close();
 */
export async function serveExplorer(cache: LatentCache | string, options: ServeExplorerOptions = {}): Promise<ExplorerServer> {
  const site = await openSite(cache, options);
  const app = explorerApp(site, options.live);
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  const server = createAdaptorServer({ fetch: app.fetch, hostname: host });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new SparsifyError(`port ${port} is in use on ${host}; pass another --port, or leave it out for a free one`));
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') reject(new SparsifyError(`cannot listen on --host ${host}: not an address of this machine`));
      else if (err.code === 'EACCES') reject(new SparsifyError(`port ${port} needs privileges; pass a port above 1023, or leave --port out for a free one`));
      else reject(err);
    });
    server.listen(port, host, () => resolveListen());
  });
  const actual = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shownHost}:${actual}/`,
    port: actual,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

/**
 * Write the explorer as a static site into `out` (index.html opens from file://, no server);
 * written beside and moved into place when whole.
 *
 * @example
 * const { index } = await exportExplorer('checkpoints/default/explore', 'site');
 */
/** Fail unless `target` can take a static export: new, empty, or an earlier export (which it replaces). */
export function checkExportTarget(target: string): void {
  if (!existsSync(target)) return;
  if (!statSync(target).isDirectory()) throw new SparsifyError(`--out ${target} is a file; give a new or empty folder for the explorer`);
  if (readdirSync(target).length > 0 && !existsSync(join(target, 'index.html'))) throw new SparsifyError(`${target} exists and is not an explorer export; give a new or empty --out folder`);
}

export async function exportExplorer(cache: LatentCache | string, out: string, options: ExplorerOptions & { onFile?: (done: number, total: number) => void } = {}): Promise<{ index: string; files: number }> {
  const site = await openSite(cache, options);
  const target = resolve(out);
  checkExportTarget(target);
  const staged = await stageFolder(target, 'writing');
  const staging = staged.path;
  await writeFile(join(staging, 'index.html'), INDEX_HTML);
  await writeFile(join(staging, 'app.js'), appFile('app.js'));
  await writeFile(join(staging, 'app.css'), appFile('app.css'));
  const paths = site.paths();
  for (const [i, path] of paths.entries()) {
    const file = join(staging, 'data', `${path}.js`);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, site.script(path)!);
    options.onFile?.(i + 1, paths.length);
  }
  await staged.commit();
  return { index: join(target, 'index.html'), files: paths.length + 3 };
}
