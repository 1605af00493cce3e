/**
 * Publishing a run to the Hub (`sparsify upload`, `uploadRun()`): every coder directory in the
 * layout `loadMany` and the reference's `load_many` read, the run's `config.json` and
 * `eval.json` where it has them, and a model card, in one commit (files already in the repo
 * are updated). The repo is created (private when asked) if it does not exist.
 */
import { commit, createRepo, repoExists, whoAmI, type CommitOperation } from '@huggingface/hub';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join, relative } from 'node:path';
import { findCoderDirs, findRunConfig, noCodersMessage } from '../coder/discover.js';
import { CFG_FILE, WEIGHTS_FILE, readCoderConfig } from '../coder/files.js';
import { numLatentsFor } from '../config/sparse-coder.js';
import { HubError, hubRequest } from './download.js';
import { modelCard, type CardEval } from './model-card.js';

export interface UploadOptions {
  /** Branch to commit to (default main). */
  revision?: string;
  /** Create the repo private when it does not exist yet. */
  private?: boolean;
  /** Access token; default HF_TOKEN, else the Hub's token file. */
  token?: string;
  /** Hub URL; default HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** List what would be sent; send nothing (no token needed). */
  dryRun?: boolean;
}

export interface UploadResult {
  repoId: string;
  /** The repo paths sent (or that would be), in order. */
  files: string[];
  /** The commit made (undefined on a dry run). */
  commit?: { oid: string; url: string };
  /** Whether the repo had to be created. */
  created: boolean;
}

/** The token: given, HF_TOKEN, or the file `huggingface-cli login` writes (HF_TOKEN_PATH, HF_HOME/token, ~/.cache/huggingface/token). */
export function hubToken(given?: string): string | undefined {
  if (given) return given;
  if (process.env.HF_TOKEN) return process.env.HF_TOKEN;
  const file = process.env.HF_TOKEN_PATH ?? join(process.env.HF_HOME ?? join(homedir(), '.cache', 'huggingface'), 'token');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined;
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Each coder's fvu, L0 and CE loss recovered from the run's eval.json, when it has one that reads. */
function evalFigures(path: string): Record<string, CardEval> | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const report = JSON.parse(readFileSync(path, 'utf8')) as { coders?: Record<string, { fvu?: number; l0?: number; splice?: { ce_loss_recovered?: number } | null }> };
    return Object.fromEntries(Object.entries(report.coders ?? {}).map(([name, c]) => [name, { fvu: c.fvu, l0: c.l0, ceLossRecovered: c.splice?.ce_loss_recovered }]));
  } catch {
    return undefined;
  }
}

/**
 * Upload the run at `runDir` to the model repo `repoId` in one commit; with `dryRun`, only
 * list the files. Errors (no token, a rejected one, an unreachable Hub) are one line.
 */
export async function uploadRun(runDir: string, repoId: string, options: UploadOptions = {}): Promise<UploadResult> {
  if (!REPO_ID.test(repoId)) throw new HubError(`repo id ${JSON.stringify(repoId)} is not of the form owner/name`);
  if (!existsSync(runDir)) throw new HubError(`${runDir}: no such run directory`);
  const entries = findCoderDirs(runDir);
  if (entries.length === 0) throw new HubError(noCodersMessage(runDir));
  // Every cfg.json is checked before anything is sent.
  const coders = entries.map((e) => ({ ...e, ...readCoderConfig(e.path) }));
  const root = findRunConfig(runDir);
  const files = new Map<string, string>();
  for (const e of entries) {
    for (const f of [CFG_FILE, WEIGHTS_FILE]) files.set(`${e.name}/${f}`, join(e.path, f));
  }
  const runFiles = root && relative(root.dir, runDir) === '' ? ['config.json', 'eval.json'].filter((f) => existsSync(join(runDir, f))) : [];
  for (const f of runFiles) files.set(f, join(runDir, f));
  const card = modelCard({
    repoId,
    model: root?.config.model,
    dataset: root?.config.dataset,
    coders: coders.map((c) => ({ name: c.name, cfg: c.cfg, dIn: c.dIn, numLatents: numLatentsFor(c.cfg, c.dIn) })),
    ...(runFiles.includes('eval.json') ? { evals: evalFigures(join(runDir, 'eval.json')) ?? {} } : {}),
  });
  const paths = ['README.md', ...files.keys()];
  if (options.dryRun) return { repoId, files: paths, created: false };

  const accessToken = hubToken(options.token);
  if (!accessToken) throw new HubError('no Hugging Face token: give --hf_token, set HF_TOKEN, or log in (huggingface-cli login writes ~/.cache/huggingface/token)');
  const hubUrl = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const call = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
    hubRequest(what, hubUrl, fn, (status) => (status === 401 ? 'the Hub rejected the token (401)' : status === 403 ? `the token may not write to ${repoId} (403)` : undefined));
  await call('checking the token', () => whoAmI({ accessToken, hubUrl }));
  const repo = { type: 'model' as const, name: repoId };
  const exists = await call(`looking up ${repoId}`, () => repoExists({ repo, accessToken, hubUrl }));
  if (!exists) await call(`creating ${repoId}`, () => createRepo({ repo, accessToken, hubUrl, private: options.private ?? false }));
  const operations: CommitOperation[] = [
    { operation: 'addOrUpdate', path: 'README.md', content: new Blob([card]) },
    // File URLs: read lazily, piece by piece, not held in memory whole.
    ...[...files].map(([path, local]): CommitOperation => ({ operation: 'addOrUpdate', path, content: pathToFileURL(local) })),
  ];
  const done = await call(`committing to ${repoId}`, () =>
    // LFS uploads (which the Hub takes for every repo), not its Xet storage protocol.
    commit({ repo, accessToken, hubUrl, branch: options.revision ?? 'main', title: `Upload ${entries.length} coder${entries.length > 1 ? 's' : ''} with sparsify`, operations, useXet: false }),
  );
  return { repoId, files: paths, created: !exists, ...(done?.commit ? { commit: done.commit } : {}) };
}
