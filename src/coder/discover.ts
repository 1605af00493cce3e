/**
 * Finding coders on disk: the coder directories of a run or collection (`hookpoint/`, and
 * below it a sweep's `configuration/` and several seeds' `seedN/`, each with cfg.json), and
 * the run's config.json when there is one.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { naturalSort } from '../util/fnmatch.js';
import { runRecordOf, type RunRecord } from '../config/run-record.js';
import { CFG_FILE } from './files.js';

/** A JSON file's contents, or undefined when it does not parse (a record cut short reads as none). */
function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

export interface CoderDirEntry {
  /** Its name in a run: the hookpoint, then `/configuration` (a sweep) and `/seedN` (several seeds). */
  name: string;
  path: string;
}

/** Levels of folders a coder may sit below a run: hookpoint / configuration / seedN. */
const MAX_DEPTH = 3;

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();
const isCoder = (p: string): boolean => existsSync(join(p, CFG_FILE));

/**
 * The coders at `path`: itself when it is a coder directory (named as in its run, when it is
 * inside one), else the coder directories below it, in natural order. A run's best/ folder and
 * directories moved aside (`.old-`) are not its coders.
 */
export function findCoderDirs(path: string): CoderDirEntry[] {
  if (isCoder(path)) {
    const run = findRunConfig(dirname(path));
    const name = run ? relative(run.dir, path).split(sep).join('/').replace(/^best\//, '') : /^seed\d+$/.test(basename(path)) ? `${basename(dirname(path))}/${basename(path)}` : basename(path);
    return [{ name, path }];
  }
  const out: CoderDirEntry[] = [];
  const visit = (dir: string, prefix: string, depth: number): void => {
    for (const name of naturalSort(readdirSync(dir))) {
      const sub = join(dir, name);
      if (!isDir(sub) || name === 'best' || name === 'explore' || name.startsWith('.') || name.includes('.old-')) continue;
      if (isCoder(sub)) out.push({ name: `${prefix}${name}`, path: sub });
      else if (depth < MAX_DEPTH) visit(sub, `${prefix}${name}/`, depth + 1);
    }
  };
  visit(path, '', 1);
  return out;
}

/** Why nothing was found at `where` (the same line for the CLI and the API). */
export function noCodersMessage(where: string, patterns: readonly string[] = []): string {
  return `${where}: no coder directories${patterns.length ? ` matching ${patterns.join(' ')}` : ''} (a coder directory holds ${CFG_FILE} and sae.safetensors)`;
}

/** The record (config.json) of the run that `path` (a run, a coder, a seed, or best/) belongs to. */
export function findRunConfig(path: string): { dir: string; config: RunRecord } | undefined {
  let dir = path;
  for (let up = 0; up < 3; up++) {
    const file = join(dir, 'config.json');
    if (existsSync(file)) return { dir, config: runRecordOf(readJson(file)) };
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}
