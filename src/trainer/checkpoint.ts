/**
 * Atomic checkpoints. A save is staged in `<dir>/.saving/` (coder directories, state
 * files), fsynced, then a COMMIT list is written; only then are the staged entries renamed
 * into place. A crash before COMMIT leaves the previous checkpoint as it was (the staging
 * folder is discarded); a crash after it is rolled forward on the next load. Either way
 * some whole checkpoint is readable.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const STAGING = '.saving';
const COMMIT = 'COMMIT';

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

/** Make the staged entries (paths relative to the staging folder) the checkpoint. */
export async function commitSave(dir: string, entries: string[], tag = ''): Promise<void> {
  const staging = join(dir, STAGING + tag);
  await fsyncTree(staging);
  const commitFile = join(staging, COMMIT);
  const handle = await open(`${commitFile}.tmp`, 'w');
  try {
    await handle.writeFile(JSON.stringify(entries));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(`${commitFile}.tmp`, commitFile);
  await fsyncPath(staging);
  await rollForward(dir, staging, entries);
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
export async function recover(dir: string): Promise<'none' | 'rolled-forward' | 'discarded'> {
  if (!existsSync(dir)) return 'none';
  let outcome: 'none' | 'rolled-forward' | 'discarded' = 'none';
  for (const name of await readdir(dir)) {
    if (!name.startsWith(STAGING)) continue;
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
    const entries = JSON.parse(readFileSync(commitFile, 'utf8')) as string[];
    await rollForward(dir, staging, entries);
    return 'rolled-forward';
  }
  await rm(staging, { recursive: true, force: true });
  return 'discarded';
}
