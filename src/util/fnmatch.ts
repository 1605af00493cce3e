import picomatch from 'picomatch';
import { orderBy } from 'natural-orderby';

/**
 * Case-sensitive shell-style matching with Python fnmatch's wildcards (`*`, `?`, `[seq]`,
 * `[!seq]`), for module names such as `h.*.attn`. Braces and extglobs are off, and `*`
 * crosses dots, as in fnmatch.
 */
export function fnmatcher(pattern: string): (name: string) => boolean {
  const isMatch = picomatch(pattern, { dot: true, nobrace: true, noextglob: true, noglobstar: true, nocase: false, posix: true });
  return (name) => !name.includes('/') && isMatch(name);
}

/** Natural sort (layers.2 before layers.10). */
export function naturalSort(names: readonly string[]): string[] {
  return orderBy([...names], [(v: string) => v], ['asc']);
}
