/**
 * Finding coders on disk: the coder directories of a run or collection (`name/` or
 * `name/seedN/`, each with cfg.json), and the run's config.json when there is one.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { naturalSort } from '../util/fnmatch.js';
import { CFG_FILE } from './files.js';

export interface CoderDirEntry {
  /** Its name in a run: the hookpoint, or `hookpoint/seedN`. */
  name: string;
  path: string;
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();
const isCoder = (p: string): boolean => existsSync(join(p, CFG_FILE));

/**
 * The coders at `path`: itself when it is a coder directory, else its sub-directories that
 * are (and their seedN sub-directories), in natural order. A run's best/ folder and
 * directories moved aside (`.old-`) are not its coders.
 */
export function findCoderDirs(path: string): CoderDirEntry[] {
  if (isCoder(path)) {
    const name = basename(path);
    return [{ name: /^seed\d+$/.test(name) ? `${basename(dirname(path))}/${name}` : name, path }];
  }
  const out: CoderDirEntry[] = [];
  for (const name of naturalSort(readdirSync(path))) {
    const sub = join(path, name);
    if (!isDir(sub) || name === 'best' || name.startsWith('.') || name.includes('.old-')) continue;
    if (isCoder(sub)) out.push({ name, path: sub });
    else for (const seed of naturalSort(readdirSync(sub)).filter((s) => /^seed\d+$/.test(s) && isCoder(join(sub, s)))) out.push({ name: `${name}/${seed}`, path: join(sub, seed) });
  }
  return out;
}

/** The config.json of the run that `path` (a run, a coder, a seed, or best/) belongs to. */
export function findRunConfig(path: string): { dir: string; config: Record<string, unknown> } | undefined {
  let dir = path;
  for (let up = 0; up < 3; up++) {
    const file = join(dir, 'config.json');
    if (existsSync(file)) return { dir, config: JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> };
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}
