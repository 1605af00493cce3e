/** Running lowered programs in the Python runtime: compile once per runtime, then one bridge call per run. */
import { getRuntime, type Runtime } from '../bridge/runtime.js';
import { programCompile, programRun, runtimeOfHandles } from '../bridge/ops.js';
import type { ProgramSpec } from './program.js';

const compiled = new WeakMap<Runtime, Map<string, Promise<string>>>();

/** Compile `spec` in `runtime` (once per runtime and source) and return its id there. */
export async function compileProgram(spec: ProgramSpec, runtime?: Runtime): Promise<string> {
  const rt = runtime ?? (await getRuntime());
  let cache = compiled.get(rt);
  if (!cache) {
    cache = new Map();
    compiled.set(rt, cache);
  }
  const key = `${spec.compile}\n${spec.source}`;
  let id = cache.get(key);
  if (!id) {
    id = programCompile(spec.source, spec.entry, spec.compile, rt);
    cache.set(key, id);
    id.catch(() => cache.delete(key));
  }
  return id;
}

/**
 * Run a program: one bridge round trip (plus a one-time compile). Arguments are matched
 * to the declared inputs by name; a missing or unexpected one is an error before any call.
 */
export async function runProgram<R = Record<string, unknown>>(spec: ProgramSpec, args: Record<string, unknown>, runtime?: Runtime): Promise<R> {
  for (const input of spec.inputs) {
    const value = args[input.name];
    if (value === undefined && !(input.kind === 'tensor' && input.optional)) {
      throw new TypeError(`program ${spec.name}: missing argument '${input.name}'`);
    }
  }
  for (const key of Object.keys(args)) {
    if (!spec.inputs.some((i) => i.name === key)) throw new TypeError(`program ${spec.name}: unexpected argument '${key}'`);
  }
  // The runtime of the handles passed in: an object of a closed runtime must not run in a new one.
  const rt = runtime ?? runtimeOfHandles(args) ?? (await getRuntime());
  const id = await compileProgram(spec, rt);
  const full: Record<string, unknown> = {};
  for (const input of spec.inputs) full[input.name] = args[input.name] ?? null;
  return programRun<R>(id, full, rt);
}
