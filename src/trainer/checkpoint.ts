/**
 * Atomic checkpoints. A save is staged in `<dir>/.saving/` (coder directories, state
 * files), fsynced, then a COMMIT list is written; only then are the staged entries renamed
 * into place. A crash before COMMIT leaves the previous checkpoint as it was (the staging
 * folder is discarded); a crash after it is rolled forward on the next load. Either way
 * some whole checkpoint is readable.
 *
 * A training checkpoint, which several ranks may write (each its own staging), commits in
 * two phases: each rank stages its part durably with its step in COMMIT (`stageSave`); once
 * every rank has, rank 0 writes the marker `checkpoint.json` naming that step (`writeMarker`:
 * the whole checkpoint's commit point, written last); then each rank rolls its part forward
 * (`finishSave`). A staged part is rolled forward on recovery only when the marker names its
 * step, so a checkpoint is complete for every rank or not counted at all.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const STAGING = '.saving';
const COMMIT = 'COMMIT';
/** The marker of a training run's last complete checkpoint. */
export const MARKER = 'checkpoint.json';

/** What the marker says: the step of the checkpoint every rank has staged. */
export interface CheckpointMarker {
  step: number;
  world_size: number;
  time: string;
}

/**
 * The staging folder for a save into `dir` (emptied first). `tag` separates the stagings
 * of ranks that save into the same directory at once.
 */
export async function beginSave(dir: string, tag = ''): Promise<string> {
  await mkdir(dir, { recursive: true });
  await recoverOne(dir, STAGING + tag); // finish or discard an earlier interrupted save first
  const staging = join(dir, STAGING + tag);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  return staging;
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function fsyncTree(path: string): Promise<void> {
  const info = await stat(path);
  if (info.isDirectory()) {
    for (const entry of await readdir(path)) await fsyncTree(join(path, entry));
  }
  await fsyncPath(path);
}

/** Write `text` to `path` durably and atomically (temp file, fsync, rename, fsync the folder). */
async function writeDurably(path: string, text: string): Promise<void> {
  const handle = await open(`${path}.tmp`, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(`${path}.tmp`, path);
  await fsyncPath(dirname(path));
}

/** Make the staged entries (paths relative to the staging folder) the checkpoint. */
export async function commitSave(dir: string, entries: string[], tag = ''): Promise<void> {
  const staging = join(dir, STAGING + tag);
  await fsyncTree(staging);
  await writeDurably(join(staging, COMMIT), JSON.stringify(entries));
  await rollForward(dir, staging, entries);
}

/** A training checkpoint's first phase: the staged entries made durable, with the step they belong to; nothing is moved yet. */
export async function stageSave(dir: string, entries: string[], step: number, tag = ''): Promise<void> {
  const staging = join(dir, STAGING + tag);
  await fsyncTree(staging);
  await writeDurably(join(staging, COMMIT), JSON.stringify({ entries, step }));
}

/** The commit point of a training checkpoint: every rank has staged `step` (rank 0 writes it, last). */
export async function writeMarker(dir: string, marker: Omit<CheckpointMarker, 'time'>): Promise<void> {
  await writeDurably(join(dir, MARKER), JSON.stringify({ ...marker, time: new Date().toISOString() }, null, 2));
}

/** The marker of `dir`'s last complete checkpoint, if it has one. */
export function readMarker(dir: string): CheckpointMarker | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, MARKER), 'utf8')) as CheckpointMarker;
  } catch {
    return undefined;
  }
}

/** A training checkpoint's last phase: this rank's staged part moved into place (after the marker). */
export async function finishSave(dir: string, tag = ''): Promise<void> {
  await recoverOne(dir, STAGING + tag);
}

async function rollForward(dir: string, staging: string, entries: string[]): Promise<void> {
  const trash = join(staging, '.old');
  for (const entry of entries) {
    const from = join(staging, entry);
    if (!existsSync(from)) continue; // moved already by an earlier, interrupted roll-forward
    const to = join(dir, entry);
    await mkdir(dirname(to), { recursive: true });
    if (existsSync(to)) {
      const old = join(trash, entry);
      await mkdir(dirname(old), { recursive: true });
      await rename(to, old);
    }
    await rename(from, to);
  }
  await fsyncPath(dir);
  await rm(staging, { recursive: true, force: true });
}

/**
 * Bring `dir` to a consistent checkpoint: roll committed saves forward, discard uncommitted
 * ones (every rank's). Returns what was done.
 */
export async function recover(dir: string, tag?: string): Promise<'none' | 'rolled-forward' | 'discarded'> {
  if (!existsSync(dir)) return 'none';
  let outcome: 'none' | 'rolled-forward' | 'discarded' = 'none';
  for (const name of await readdir(dir)) {
    // One rank's own staging only, when each rank recovers its part.
    if (!name.startsWith(STAGING) || (tag !== undefined && name !== STAGING + tag)) continue;
    const done = await recoverOne(dir, name);
    if (done === 'rolled-forward' || outcome === 'none') outcome = done;
  }
  return outcome;
}

async function recoverOne(dir: string, name: string): Promise<'none' | 'rolled-forward' | 'discarded'> {
  const staging = join(dir, name);
  if (!existsSync(staging)) return 'none';
  const commitFile = join(staging, COMMIT);
  if (existsSync(commitFile)) {
    const commit = JSON.parse(readFileSync(commitFile, 'utf8')) as string[] | { entries: string[]; step: number };
    // A training checkpoint's part counts only once the marker names its step.
    if (Array.isArray(commit) || readMarker(dir)?.step === commit.step) {
      await rollForward(dir, staging, Array.isArray(commit) ? commit : commit.entries);
      return 'rolled-forward';
    }
  }
  await rm(staging, { recursive: true, force: true });
  return 'discarded';
}
