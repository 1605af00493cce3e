/** The program cache: specs built once per key (a structure), shared by every caller that asks for them. */
import type { ProgramSpec } from './program.js';
import type { Signature } from './signature.js';

const specs = new Map<string, ProgramSpec<string, Signature, unknown>>();

/** The spec under `key`, built by `build` the first time. */
export function cachedProgram<P extends ProgramSpec<string, Signature, unknown>>(key: string, build: () => P): P {
  let spec = specs.get(key);
  if (!spec) {
    spec = build();
    specs.set(key, spec);
  }
  return spec as P;
}
