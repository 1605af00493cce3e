// A hub-like HTTP server on 127.0.0.1, speaking the parts of the Hugging Face Hub API that
// model downloads use (revision info, tree listing, paths-info, resolve with ranges).
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  files: Record<string, Buffer>;
  /** When set, requests must carry `Authorization: Bearer <token>`. */
  token?: string;
}

export interface LoggedRequest {
  method: string;
  url: string;
  range?: string;
  auth?: string;
}

export interface HubServer {
  url: string;
  requests: LoggedRequest[];
  close(): Promise<void>;
}

const SHA = 'a'.repeat(40);

function oid(data: Buffer): string {
  return createHash('sha1').update(data).digest('hex');
}

export async function startHubServer(repos: Record<string, FakeRepo>): Promise<HubServer> {
  const requests: LoggedRequest[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => handle(req, res, body));
  });

  function json(res: ServerResponse, status: number, value: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  }

  function handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push({ method: req.method ?? 'GET', url: decodeURIComponent(url.pathname), range: req.headers.range, auth: req.headers.authorization });
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const api = parts[0] === 'api' && parts[1] === 'models';
    const [owner, name, verb, , ...rest] = api ? parts.slice(2) : parts; // the revision is not checked
    const repoId = `${owner}/${name}`;
    const repo = repos[repoId];
    if (!repo) {
      res.writeHead(404, { 'x-error-code': 'RepoNotFound' });
      res.end('Repository not found');
      return;
    }
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      res.writeHead(401);
      res.end('Unauthorized');
      return;
    }
    const files = Object.entries(repo.files);
    if (api && verb === 'revision') {
      json(res, 200, { _id: repoId, id: repoId, sha: SHA, private: false, downloads: 0, gated: false, likes: 0, siblings: files.map(([p]) => ({ rfilename: p })) });
    } else if (api && verb === 'tree') {
      const prefix = rest.join('/');
      const recursive = url.searchParams.get('recursive') === 'true';
      const under = files.filter(([p]) => !prefix || p.startsWith(`${prefix}/`));
      const entries = new Map<string, unknown>();
      for (const [p, data] of under) {
        const relative = prefix ? p.slice(prefix.length + 1) : p;
        const segs = relative.split('/');
        if (recursive || segs.length === 1) entries.set(p, { type: 'file', path: p, oid: oid(data), size: data.length });
        for (let i = 1; i < segs.length; i++) {
          const dir = [prefix, ...segs.slice(0, i)].filter(Boolean).join('/');
          if (recursive || i === 1) entries.set(dir, { type: 'directory', path: dir, oid: oid(Buffer.from(dir)), size: 0 });
        }
      }
      if (prefix && under.length === 0) {
        res.writeHead(404, { 'x-error-code': 'EntryNotFound' });
        res.end('not found');
        return;
      }
      json(res, 200, [...entries.values()]);
    } else if (api && verb === 'paths-info') {
      const { paths } = JSON.parse(body) as { paths: string[] };
      json(
        res,
        200,
        paths.filter((p) => repo.files[p]).map((p) => ({ type: 'file', path: p, oid: oid(repo.files[p]!), size: repo.files[p]!.length, lastCommit: { id: SHA, title: 'init', date: new Date(0).toISOString() } })),
      );
    } else if (!api && verb === 'resolve') {
      const data = repo.files[rest.join('/')];
      if (!data) {
        res.writeHead(404, { 'x-error-code': 'EntryNotFound' });
        res.end('not found');
        return;
      }
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (m) {
        const start = Number(m[1]);
        const end = m[2] ? Math.min(Number(m[2]), data.length - 1) : data.length - 1;
        res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${data.length}`, 'content-length': end - start + 1, etag: `"${oid(data)}"`, 'content-type': 'application/octet-stream' });
        res.end(data.subarray(start, end + 1));
      } else {
        res.writeHead(200, { 'content-length': data.length, etag: `"${oid(data)}"`, 'content-type': 'application/octet-stream' });
        res.end(data);
      }
    } else {
      res.writeHead(404);
      res.end();
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Requests that moved file content (not the 1-byte size probe). */
export function contentFetches(requests: LoggedRequest[]): LoggedRequest[] {
  return requests.filter((r) => r.url.includes('/resolve/') && r.range !== 'bytes=0-0');
}
