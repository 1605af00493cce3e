/**
 * Telling a local path from a Hugging Face Hub name (`org/name`): a name that looks like a
 * path is never sent to the Hub, so a typo gives "no such file or directory", not a Hub error.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, sep } from 'node:path';
import { SparsifyError } from '../bridge/errors.js';

/** `~/x` -> the home directory's x (shells leave a quoted ~ alone). */
export function expandHome(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}

/**
 * Whether `nameOrPath` means a local path: it exists, starts with `.`, `/` or `~`, or
 * contains a path separator after a directory that exists here (`data/train.jsonl`).
 */
export function looksLocal(nameOrPath: string): boolean {
  if (existsSync(nameOrPath)) return true;
  if (/^[.~/]/.test(nameOrPath) || isAbsolute(nameOrPath)) return true;
  if (nameOrPath.includes('/') || nameOrPath.includes(sep)) {
    const parent = dirname(nameOrPath);
    return parent !== '.' && existsSync(parent);
  }
  return false;
}

/**
 * The local path for `nameOrPath` (home expanded) when it means one, after checking that it
 * exists; undefined for a Hub name. `what` names the argument in the error.
 */
export function localPath(nameOrPath: string, what: string): string | undefined {
  const path = expandHome(nameOrPath);
  if (!looksLocal(path)) return undefined;
  if (!existsSync(path)) throw new SparsifyError(`${what}: no such file or directory: ${nameOrPath}`);
  return path;
}
