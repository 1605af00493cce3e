/**
 * Building a folder whole or not at all: it is written in a staging folder beside its target
 * (`.<name>.<what>-<pid>`), then moved into place in one rename (an earlier folder there is
 * moved out first and removed after). A staging folder whose process died is removed by the
 * next build of the same target; one of a live process is left alone.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { processAlive } from './process.js';

/** A folder being built. */
export interface StagedFolder {
  /** Where to write it. */
  readonly path: string;
  /** Move it into place (replacing what is there). */
  commit(): Promise<void>;
  /** Drop it. */
  discard(): Promise<void>;
}

/** Start building `target`; `what` names the build in the staging folder's name (`building`, `writing`). */
export async function stageFolder(target: string, what: string): Promise<StagedFolder> {
  const parent = dirname(target);
  const prefix = `.${basename(target)}.${what}-`;
  await mkdir(parent, { recursive: true });
  for (const name of readdirSync(parent)) {
    if (name.startsWith(prefix) && !processAlive(Number(name.slice(prefix.length)))) await rm(join(parent, name), { recursive: true, force: true });
  }
  const path = join(parent, `${prefix}${process.pid}`);
  await rm(path, { recursive: true, force: true });
  await mkdir(path, { recursive: true });
  return {
    path,
    async commit() {
      const old = `${target}.old-${process.pid}`;
      if (existsSync(target)) await rename(target, old);
      await rename(path, target);
      await rm(old, { recursive: true, force: true });
    },
    discard: () => rm(path, { recursive: true, force: true }),
  };
}
