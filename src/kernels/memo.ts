/** Program specs built once per key (a structure), shared by every caller that asks for them. */
import type { ProgramSpec } from './program.js';

const specs = new Map<string, ProgramSpec>();

/** The spec under `key`, built by `build` the first time. */
export function cachedProgram<O extends string>(key: string, build: () => ProgramSpec<O>): ProgramSpec<O> {
  let spec = specs.get(key);
  if (!spec) {
    spec = build();
    specs.set(key, spec);
  }
  return spec as ProgramSpec<O>;
}
