// A hub-like HTTP server on 127.0.0.1, speaking the parts of the Hugging Face Hub API that
// model downloads use (revision info, tree listing, paths-info, resolve with ranges) and, with
// a write token, those @huggingface/hub's uploads use (whoami, repo lookup and creation,
// preupload, LFS batch with basic transfers, commit as NDJSON), which change `repos` in place.
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
  /** Each commit made: its repo, branch, title and the paths it wrote. */
  commits: { repo: string; branch: string; title: string; paths: string[] }[];
  close(): Promise<void>;
}

export interface HubServerOptions {
  /** The token that may write (whoami answers for it; uploads need it). */
  writeToken?: string;
}

const SHA = 'a'.repeat(40);

function oid(data: Buffer): string {
  return createHash('sha1').update(data).digest('hex');
}

export async function startHubServer(repos: Record<string, FakeRepo & { private?: boolean }>, options: HubServerOptions = {}): Promise<HubServer> {
  const requests: LoggedRequest[] = [];
  const commits: HubServer['commits'] = [];
  const lfs = new Map<string, Buffer>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      if (!writes(req, res, raw)) handle(req, res, raw.toString());
    });
  });

  /** The upload endpoints; false when the request is none of them. */
  function writes(req: IncomingMessage, res: ServerResponse, raw: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    const authorized = options.writeToken !== undefined && req.headers.authorization === `Bearer ${options.writeToken}`;
    const log = (): void => void requests.push({ method: req.method ?? 'GET', url: path, auth: req.headers.authorization });
    let m: RegExpExecArray | null;
    if (path === '/api/whoami-v2') {
      log();
      if (!authorized) json(res, 401, { error: 'Invalid credentials in Authorization header' });
      else json(res, 200, { type: 'user', name: 'tester', auth: { type: 'access_token', accessToken: { displayName: 'test', role: 'write', createdAt: new Date(0).toISOString() } } });
      return true;
    }
    if (req.method === 'POST' && path === '/api/repos/create') {
      log();
      // The Hub's repo creation: `visibility` (public, private), or the older `private` flag.
      const { name, organization, visibility, private: priv } = JSON.parse(raw.toString()) as { name: string; organization: string; visibility?: string; private?: boolean };
      if (!authorized) json(res, 401, { error: 'Unauthorized' });
      else {
        repos[`${organization}/${name}`] = { files: {}, private: visibility === 'private' || priv === true };
        json(res, 200, { url: `${url.origin}/${organization}/${name}` });
      }
      return true;
    }
    if (req.method === 'PUT' && (m = /^\/lfs-upload\/([0-9a-f]{64})$/.exec(path))) {
      log();
      lfs.set(m[1]!, raw);
      res.writeHead(200);
      res.end();
      return true;
    }
    if (req.method === 'POST' && (m = /^\/([^/]+\/[^/]+)\.git\/info\/lfs\/objects\/batch$/.exec(path))) {
      log();
      const { objects } = JSON.parse(raw.toString()) as { objects: { oid: string; size: number }[] };
      json(res, 200, { transfer: 'basic', objects: objects.map((o) => ({ ...o, actions: { upload: { href: `http://${req.headers.host}/lfs-upload/${o.oid}` } } })) });
      return true;
    }
    if (req.method === 'POST' && (m = /^\/api\/models\/([^/]+\/[^/]+)\/(preupload|commit)\/(.+)$/.exec(path))) {
      log();
      const [, repoId, verb, branch] = m;
      const repo = repos[repoId!];
      if (!authorized) return (json(res, 401, { error: 'Unauthorized' }), true);
      if (!repo) return (json(res, 404, { error: 'Repository not found' }), true);
      if (verb === 'preupload') {
        // As the Hub does: binary and large files go to LFS, small text files inline.
        const { files } = JSON.parse(raw.toString()) as { files: { path: string; size: number; sample: string }[] };
        json(res, 200, { files: files.map((f) => ({ path: f.path, uploadMode: f.path.endsWith('.safetensors') || f.size > 10_000 ? 'lfs' : 'regular' })) });
        return true;
      }
      const lines = raw.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { key: string; value: Record<string, unknown> });
      const paths: string[] = [];
      for (const { key, value } of lines) {
        if (key === 'file') repo.files[value.path as string] = Buffer.from(value.content as string, (value.encoding as BufferEncoding | undefined) ?? 'utf8');
        else if (key === 'lfsFile') {
          const data = lfs.get(value.oid as string);
          if (!data) return (json(res, 400, { error: `LFS object ${String(value.oid)} was never uploaded` }), true);
          repo.files[value.path as string] = data;
        } else continue;
        paths.push(value.path as string);
      }
      const header = lines.find((l) => l.key === 'header')?.value ?? {};
      commits.push({ repo: repoId!, branch: branch!, title: String(header.summary ?? ''), paths });
      json(res, 200, { commitOid: 'b'.repeat(40), commitUrl: `${url.origin}/${repoId}/commit/${'b'.repeat(40)}` });
      return true;
    }
    return false;
  }

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
    if (api && verb === undefined) {
      json(res, 200, { _id: repoId, id: repoId, private: repo.private ?? false });
    } else if (api && verb === 'revision') {
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
    commits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Requests that moved file content (not the 1-byte size probe). */
export function contentFetches(requests: LoggedRequest[]): LoggedRequest[] {
  return requests.filter((r) => r.url.includes('/resolve/') && r.range !== 'bytes=0-0');
}
