/**
 * A run directory's safety: one process at a time (a lock naming its PID, and its torchrun
 * job; a dead process's lock, or a restarted job's own, is taken over), no training into a directory that holds another run unless resuming
 * it or moving it aside (--overwrite), and no metrics from steps a resumed run will redo.
 */
import { existsSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/files.js';
import { LOCK_FILE, checkFolderFree, lockFolder, type FolderLock } from '../util/lock.js';
import { basename, dirname, join } from 'node:path';
import { SparsifyError } from '../bridge/errors.js';

export { LOCK_FILE };
/** The lock this process holds on a run directory. */
export type RunLock = FolderLock;

/** Another process holds the run directory, or it holds a run that would be mixed with this one. */
export class RunDirError extends SparsifyError {
  override name = 'RunDirError';
}

/** What to do when another process holds a run directory. */
const RUN_BUSY = 'wait for it to finish, or train into another --run_name';

/**
 * The job this process belongs to when torchrun started it (its run id): a restarted job's
 * workers take over the run lock its stopped workers held, on whichever host rank 0 now is.
 */
export function launchedJob(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.TORCHELASTIC_RUN_ID && env.RANK !== undefined ? `torchrun:${env.TORCHELASTIC_RUN_ID}` : undefined;
}

/** Fail when a live process (of another job) holds `runDir`'s lock. */
export function checkNotLocked(runDir: string): void {
  checkFolderFree(runDir, RUN_BUSY, (m) => new RunDirError(m), launchedJob());
}

/**
 * Take `runDir`'s lock (creating the directory): fails at once, naming the PID, when a live
 * process holds it; a dead process's lock is taken over. Released by `release()` or when
 * this process exits.
 */
export function lockRunDir(runDir: string): Promise<RunLock> {
  return lockFolder(runDir, RUN_BUSY, (m) => new RunDirError(m), launchedJob());
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
