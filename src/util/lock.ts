/**
 * One process at a time in a folder (a run directory, an activation cache being written): a
 * lock file naming the holder's PID and host, taken atomically; the lock of a process that
 * died is taken over, one from another host is respected (its process cannot be checked). A
 * lock may name a job (torchrun's run id): another process of the same job takes it over, on
 * any host (a restarted job's workers replace the ones torchrun stopped).
 */
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { processAlive } from './process.js';

export const LOCK_FILE = '.lock';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  /** The job the holder belongs to (torchrun's run id), if it said one. */
  job?: string;
}

function readLock(path: string): LockInfo | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
  } catch {
    return undefined; // vanished, or half written by a process that died: stale
  }
}

/** Whether a lock is held by a live process (a lock from another host is taken as held) of another job than `job`. */
function held(lock: LockInfo | undefined, job?: string): lock is LockInfo {
  if (!lock) return false;
  if (job !== undefined && lock.job === job) return false;
  if (lock.host !== hostname()) return true;
  return lock.pid !== process.pid && processAlive(lock.pid);
}

function heldMessage(dir: string, lock: LockInfo, busy: string): string {
  const where = lock.host === hostname() ? `process ${lock.pid}` : `process ${lock.pid} on ${lock.host}`;
  return `${dir} is in use by ${where} (since ${lock.started}); ${busy}${lock.host === hostname() ? '' : ` (if that process is gone, delete ${join(dir, LOCK_FILE)})`}`;
}

/** A lock this process holds. */
export interface FolderLock {
  release(): void;
}

/** Fail (with `error` of the message) when a live process holds `dir`'s lock; `busy` says what to do then. */
export function checkFolderFree(dir: string, busy: string, error: (message: string) => Error, job?: string): void {
  const lock = readLock(join(dir, LOCK_FILE));
  if (held(lock, job)) throw error(heldMessage(dir, lock, busy));
}

/**
 * Take `dir`'s lock (creating the folder): fails at once, naming the PID, when a live process
 * holds it; a dead process's lock, or one of the same `job`, is taken over. Released by
 * `release()` or when this process exits.
 */
export async function lockFolder(dir: string, busy: string, error: (message: string) => Error, job?: string): Promise<FolderLock> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString(), ...(job !== undefined ? { job } : {}) };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(JSON.stringify(mine));
      } finally {
        await handle.close();
      }
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        process.off('exit', release);
        const current = readLock(path);
        if (current && current.pid === process.pid && current.host === mine.host) rmSync(path, { force: true });
      };
      process.on('exit', release);
      return { release };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const lock = readLock(path);
      if (held(lock, job)) throw error(heldMessage(dir, lock, busy));
      // Stale: move it out of the way (only one of several racing processes can), then retry.
      try {
        await rename(path, `${path}.stale-${process.pid}`);
        rmSync(`${path}.stale-${process.pid}`, { force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }
  throw error(`could not take the lock on ${dir}: other processes keep taking it`);
}
