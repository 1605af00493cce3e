/** Program specs built once per key (structure), shared by the coder API and the trainer. */
import type { ProgramSpec } from './graph.js';
import type { CoderStructure } from './sparse-coder.js';

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

/** A short, identifier-safe name for a coder structure (part of program names). */
export function structureTag(s: CoderStructure): string {
  return `${s.activation}_${s.transcode ? 'tc' : 'sae'}${s.skipConnection ? '_skip' : ''}${s.multiTopk ? '_mtk' : ''}${s.normalizeDecoder ? '_norm' : ''}`;
}
