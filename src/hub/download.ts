/** Fetching coder files from the Hugging Face Hub (or any server speaking its API). */
import { downloadFileToCacheDir, getHFHubCachePath, getRepoFolderName, listFiles, modelInfo } from '@huggingface/hub';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SparsifyError } from '../bridge/errors.js';
import { isCrossLayerDir } from '../coder/files.js';
import { fnmatcher, naturalSort } from '../util/fnmatch.js';
import { offlineByEnv } from './reach.js';

/** Where and how to reach the Hub. */
export interface HubOptions {
  /** Hub URL; default `HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Access token (starts with `hf_`); default `HF_TOKEN`. */
  token?: string;
  /** Branch, tag or commit; default 'main'. */
  revision?: string;
  /** Cache directory; default the Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME/hub`, ~/.cache/huggingface/hub). */
  cacheDir?: string;
}

/** The Hub could not give us what we asked for. */
export class HubError extends SparsifyError {
  override name = 'HubError';
  /** @internal True when the Hub could not be reached at all. */
  readonly offline: boolean;
  constructor(message: string, offline = false) {
    super(message);
    this.offline = offline;
  }
}

const COMMIT = /^[0-9a-f]{40}$/;

function settings(options: HubOptions): { hubUrl: string; accessToken?: string; revision: string; cacheDir?: string } {
  const hubUrl = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const accessToken = options.token ?? process.env.HF_TOKEN ?? undefined;
  const cacheDir = options.cacheDir ?? process.env.HF_HUB_CACHE ?? (process.env.HF_HOME ? join(process.env.HF_HOME, 'hub') : undefined);
  return { hubUrl, ...(accessToken ? { accessToken } : {}), revision: options.revision ?? 'main', ...(cacheDir ? { cacheDir } : {}) };
}

/**
 * Run a Hub request; a failure becomes one line, `WHAT at HUB failed: WHY`: the Hub could not
 * be reached (an offline HubError), `detail`'s words for the HTTP status, else the error's own.
 */
export async function hubRequest<T>(what: string, hubUrl: string, fn: () => Promise<T>, detail: (status: number | undefined) => string | undefined): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status === undefined && err instanceof TypeError) {
      // fetch failed: no answer from the Hub at all
      throw new HubError(`${what} at ${hubUrl} failed: cannot reach the Hub (${(err.cause as Error | undefined)?.message ?? err.message})`, true);
    }
    throw new HubError(`${what} at ${hubUrl} failed: ${detail(status) ?? (err as Error).message}`);
  }
}

function hubCall<T>(what: string, repo: string, hubUrl: string, fn: () => Promise<T>): Promise<T> {
  return hubRequest(`${what} for '${repo}'`, hubUrl, fn, (status) =>
    status === 404 ? (what.startsWith('listing hookpoint') ? 'no such hookpoint in the repo' : 'not found') : status === 401 || status === 403 ? 'access denied (is a token needed?)' : undefined,
  );
}

/**
 * Download the files of one coder (or of every coder matching `subdirPattern`) into the
 * Hugging Face cache and return the local directory to load from. Only `hookpoint/*` is
 * requested when a hookpoint is given. The revision is pinned to a commit first, so files
 * already cached are used without any further request.
 */
export async function downloadCoderFiles(
  repo: string,
  options: HubOptions & { hookpoint?: string; subdirPattern?: string },
): Promise<string> {
  const s = settings(options);
  const want = { hookpoint: options.hookpoint?.replace(/\/+$/, ''), subdirPattern: options.subdirPattern };
  if (isOffline()) {
    const cached = fromCache(repo, s, want);
    if (!cached) throw new HubError(`'${repo}'${want.hookpoint ? ` (${want.hookpoint})` : ''} is not in the Hugging Face cache and HF_HUB_OFFLINE is set`);
    return cached;
  }
  try {
    return await downloadOnline(repo, s, want);
  } catch (err) {
    // No connection at all (not an answer from the Hub): use the cache, as huggingface_hub does.
    const cached = err instanceof HubError && err.offline ? fromCache(repo, s, want) : undefined;
    if (cached) return cached;
    throw err;
  }
}

const isOffline = offlineByEnv;

/** The local directory for the request, when the cache holds it at this revision. */
function fromCache(repo: string, s: ReturnType<typeof settings>, want: { hookpoint?: string | undefined; subdirPattern?: string | undefined }): string | undefined {
  const storage = join(s.cacheDir ?? getHFHubCachePath(), getRepoFolderName({ name: repo, type: 'model' }));
  let sha = s.revision;
  if (!COMMIT.test(sha)) {
    const ref = join(storage, 'refs', s.revision);
    if (!existsSync(ref)) return undefined;
    sha = readFileSync(ref, 'utf8').trim();
  }
  const snapshot = join(storage, 'snapshots', sha);
  if (want.hookpoint) return existsSync(join(snapshot, want.hookpoint, 'cfg.json')) ? join(snapshot, want.hookpoint) : undefined;
  if (want.subdirPattern) {
    const match = fnmatcher(want.subdirPattern);
    const found = existsSync(snapshot) && (readdirSync(snapshot).some((d) => match(d) && existsSync(join(snapshot, d, 'cfg.json'))) || isCrossLayerDir(snapshot));
    return found ? snapshot : undefined;
  }
  return existsSync(join(snapshot, 'cfg.json')) ? snapshot : undefined;
}

async function downloadOnline(
  repo: string,
  s: ReturnType<typeof settings>,
  options: { hookpoint?: string | undefined; subdirPattern?: string | undefined },
): Promise<string> {
  const sha = COMMIT.test(s.revision)
    ? s.revision
    : (await hubCall('looking up the revision', repo, s.hubUrl, () =>
        modelInfo({ name: repo, revision: s.revision, hubUrl: s.hubUrl, accessToken: s.accessToken, additionalFields: ['sha'] }),
      )).sha;
  if (typeof sha !== 'string' || !COMMIT.test(sha)) throw new HubError(`the Hub at ${s.hubUrl} gave no commit for '${repo}' at ${s.revision}`);

  const hookpoint = options.hookpoint;
  const listing = await hubCall(hookpoint ? `listing hookpoint '${hookpoint}'` : 'listing files', repo, s.hubUrl, async () => {
    const out: { path: string; type: string }[] = [];
    for await (const entry of listFiles({ repo, revision: sha, hubUrl: s.hubUrl, accessToken: s.accessToken, recursive: true, ...(hookpoint ? { path: hookpoint } : {}) })) {
      out.push({ path: entry.path, type: entry.type });
    }
    return out;
  });
  const files = listing.filter((e) => e.type === 'file').map((e) => e.path);
  const subdirs = naturalSort([...new Set(files.filter((f) => f.includes('/')).map((f) => f.split('/')[0]!))]);

  let wanted: string[];
  if (hookpoint) {
    wanted = files.filter((f) => f.startsWith(`${hookpoint}/`) && f.split('/').length === hookpoint.split('/').length + 1);
    if (wanted.length === 0) throw new HubError(`'${repo}' has no coder at hookpoint '${hookpoint}'`);
  } else if (options.subdirPattern) {
    const match = fnmatcher(options.subdirPattern);
    wanted = files.filter((f) => f.split('/').length === 2 && match(f.split('/')[0]!));
    if (wanted.length === 0) throw new HubError(`'${repo}' has no coder directories matching '${options.subdirPattern}'`);
    // A cross-layer transcoder's cfg.json is the repo's own (its layer folders hold tensors only).
    if (files.includes('cfg.json')) wanted.push('cfg.json');
  } else {
    if (!files.includes('cfg.json')) {
      throw new HubError(
        `'${repo}' has no top-level cfg.json; give a hookpoint${subdirs.length ? ` (one of: ${subdirs.slice(0, 8).join(', ')}${subdirs.length > 8 ? ', ...' : ''})` : ''}`,
      );
    }
    wanted = files.filter((f) => !f.includes('/'));
  }

  let snapshot: string | undefined;
  for (const path of wanted) {
    const local = await hubCall(`downloading ${path}`, repo, s.hubUrl, () =>
      downloadFileToCacheDir({ repo, path, revision: sha, hubUrl: s.hubUrl, accessToken: s.accessToken, cacheDir: s.cacheDir }),
    );
    snapshot ??= local.slice(0, local.length - path.length - 1);
  }
  await recordRef(snapshot!, s.revision, sha);
  return hookpoint ? join(snapshot!, hookpoint) : snapshot!;
}

/** Write refs/<revision> as huggingface_hub does, so Python finds the same snapshot. */
async function recordRef(snapshotDir: string, revision: string, sha: string): Promise<void> {
  if (revision === sha) return;
  const storage = join(snapshotDir, '..', '..');
  await mkdir(join(storage, 'refs'), { recursive: true });
  await writeFile(join(storage, 'refs', revision), sha);
}
