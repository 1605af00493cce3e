/**
 * A run directory's safety: one process at a time (a lock naming its PID; a dead process's
 * lock is taken over), no training into a directory that holds another run unless resuming
 * it or moving it aside (--overwrite), and no metrics from steps a resumed run will redo.
 */
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { writeFileAtomic } from '../util/files.js';
import { processAlive } from '../util/process.js';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { SparsifyError } from '../bridge/errors.js';

export const LOCK_FILE = '.lock';

/** Another process holds the run directory, or it holds a run that would be mixed with this one. */
export class RunDirError extends SparsifyError {
  override name = 'RunDirError';
}

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

function readLock(path: string): LockInfo | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
  } catch {
    return undefined; // vanished, or half written by a process that died: stale
  }
}

/** Whether a lock is held by a live process (a lock from another host is taken as held). */
function held(lock: LockInfo | undefined): lock is LockInfo {
  if (!lock) return false;
  if (lock.host !== hostname()) return true;
  return lock.pid !== process.pid && processAlive(lock.pid);
}

function heldMessage(runDir: string, lock: LockInfo): string {
  const where = lock.host === hostname() ? `process ${lock.pid}` : `process ${lock.pid} on ${lock.host}`;
  return `${runDir} is in use by ${where} (since ${lock.started}); wait for it to finish, or train into another --run_name${lock.host === hostname() ? '' : ` (if that process is gone, delete ${join(runDir, LOCK_FILE)})`}`;
}

/** Fail when a live process holds `runDir`'s lock. */
export function checkNotLocked(runDir: string): void {
  const lock = readLock(join(runDir, LOCK_FILE));
  if (held(lock)) throw new RunDirError(heldMessage(runDir, lock));
}

/** The lock this process holds on a run directory. */
export interface RunLock {
  release(): void;
}

/**
 * Take `runDir`'s lock (creating the directory): fails at once, naming the PID, when a live
 * process holds it; a dead process's lock is taken over. Released by `release()` or when
 * this process exits.
 */
export async function lockRunDir(runDir: string): Promise<RunLock> {
  await mkdir(runDir, { recursive: true });
  const path = join(runDir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
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
      if (held(lock)) throw new RunDirError(heldMessage(runDir, lock));
      // Stale: move it out of the way (only one of several racing processes can), then retry.
      try {
        await rename(path, `${path}.stale-${process.pid}`);
        rmSync(`${path}.stale-${process.pid}`, { force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }
  throw new RunDirError(`could not take the lock on ${runDir}: other processes keep taking it`);
}

/** Whether `runDir` holds a run (anything besides our lock). */
export function holdsRun(runDir: string): boolean {
  if (!existsSync(runDir)) return false;
  if (!statSync(runDir).isDirectory()) throw new RunDirError(`${runDir} is a file, not a run directory; choose another --save_dir or --run_name`);
  return readdirSync(runDir).some((name) => name !== LOCK_FILE);
}

/**
 * A new run may start in `runDir`: it holds no earlier run, or `overwrite` moves that run
 * aside (renamed, atomically, to `<run>.old-<time>`; returned). Never mixes two runs.
 */
export function prepareFreshRunDir(runDir: string, overwrite: boolean): string | undefined {
  if (!holdsRun(runDir)) return undefined;
  checkNotLocked(runDir);
  if (!overwrite) {
    throw new RunDirError(
      `${runDir} already holds a run; pass --resume to continue it, or --overwrite to move it aside and start a new one (or choose another --run_name)`,
    );
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const aside = join(dirname(runDir), `${basename(runDir)}.old-${stamp}`);
  renameSync(runDir, aside);
  return aside;
}

/** Drop the lines of metrics.jsonl past `step` (steps a resumed run will log again), atomically. */
export async function truncateMetrics(runDir: string, step: number): Promise<number> {
  const path = join(runDir, 'metrics.jsonl');
  if (!existsSync(path)) return 0;
  const lines = (await readFile(path, 'utf8')).split('\n').filter((l) => l.trim());
  const kept = lines.filter((l) => {
    try {
      return (JSON.parse(l) as { step?: number }).step! <= step;
    } catch {
      return false; // a line cut short by a kill
    }
  });
  if (kept.length === lines.length) return 0;
  await writeFileAtomic(path, kept.map((l) => `${l}\n`).join(''));
  return lines.length - kept.length;
}

/** Fail unless `saveDir` can hold run directories (it is a directory, or can be made one, and is writable). */
export function checkSaveDir(saveDir: string): void {
  let probe = saveDir;
  while (!existsSync(probe)) {
    const parent = dirname(probe);
    if (parent === probe) break;
    probe = parent;
  }
  if (!statSync(probe).isDirectory()) throw new RunDirError(`--save_dir ${saveDir}: ${probe} is a file, not a directory`);
  const test = join(probe, `.sparsify-write-test-${process.pid}`);
  try {
    writeFileSync(test, '');
    rmSync(test, { force: true });
  } catch (err) {
    throw new RunDirError(`--save_dir ${saveDir}: cannot write in ${probe} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
