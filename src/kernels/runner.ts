/**
 * Running lowered programs in the Python runtime: compile once per runtime, then one bridge
 * call per run, alone (`runProgram`) or inside the runtime's batch runner (`runPasses`: the
 * model's forward passes with programs in module hooks and on the logits, then programs
 * after the batches). Arguments are bound to a program's signature by TypeScript name and
 * checked before anything is sent; they travel under the programs' Python names and the
 * outputs come back under their TypeScript names.
 */
import { getRuntime, type Runtime } from '../bridge/runtime.js';
import { hooksForward, hooksRun, programCompile, programRun, runtimeOfHandles, type HooksForwardReply, type HooksForwardRequest, type HooksRunReply, type HooksRunRequest, type PassSpec } from '../bridge/ops.js';
import type { PyObject, Tensor } from '../bridge/ops.js';
import type { ProgramResult, ProgramSpec } from './program.js';
import type { ArgsOf, Signature } from './signature.js';
import type { SymBundle, SymObject, SymScalar, SymTensor } from './values.js';

const compiledBySource = new WeakMap<Runtime, Map<string, Promise<string>>>();
const compiledBySpec = new WeakMap<Runtime, WeakMap<object, Promise<string>>>();

/** Compile `spec` in `runtime` (once per runtime and source) and return its id there. */
export async function compileProgram(spec: ProgramSpec<string, Signature, unknown>, runtime?: Runtime): Promise<string> {
  const rt = runtime ?? (await getRuntime());
  let bySpec = compiledBySpec.get(rt);
  if (!bySpec) {
    bySpec = new WeakMap();
    compiledBySpec.set(rt, bySpec);
  }
  const known = bySpec.get(spec);
  if (known) return known;
  let cache = compiledBySource.get(rt);
  if (!cache) {
    cache = new Map();
    compiledBySource.set(rt, cache);
  }
  const key = `${spec.compile}\n${spec.source}`;
  let id = cache.get(key);
  if (!id) {
    id = programCompile(spec.source, spec.entry, spec.compile, rt);
    cache.set(key, id);
    id.catch(() => {
      cache.delete(key);
      bySpec.delete(spec);
    });
  }
  bySpec.set(spec, id);
  return id;
}

type SignatureOf<P> = P extends ProgramSpec<string, infer S, unknown> ? S : never;
type OutputsOf<P> = P extends ProgramSpec<string, Signature, infer R> ? R : never;

/** What a program's output arrives as in TypeScript: tensors and other objects as handles, numbers as numbers. */
export type ResultOf<V> = V extends SymTensor
  ? Tensor
  : V extends SymBundle<string> | SymObject
    ? PyObject
    : V extends SymScalar
      ? number
      : V extends number | boolean | null
        ? V
        : V extends Record<string, ProgramResult>
          ? { [K in keyof V]: ResultOf<V[K]> }
          : unknown;

/** A program with its arguments, checked and under their Python names: what a pass runs. */
export interface BoundProgram {
  readonly spec: ProgramSpec<string, Signature, unknown>;
  /** The arguments by Python name (provided inputs left to the runtime). */
  readonly args: Readonly<Record<string, unknown>>;
}

/**
 * Bind `args` (TypeScript names) to `spec`'s signature: every input the runtime does not
 * provide must be given (optional tensors may be left out, as None), nothing else may be.
 * Throws a TypeError naming the program and the argument.
 *
 * @example
 * const hook = bind(fvuHookProgram(s), { params, state, k: 32, deadThreshold: null, ... });
 */
export function bind<P extends ProgramSpec<string, Signature, unknown>>(spec: P, args: ArgsOf<SignatureOf<P>>): BoundProgram {
  const given = args as Record<string, unknown>;
  const wire: Record<string, unknown> = {};
  for (const input of spec.inputs) {
    if (input.provided) continue;
    const value = given[input.key];
    if (value === undefined && !(input.kind === 'tensor' && input.optional)) throw new TypeError(`program ${spec.name}: missing argument '${input.key}'`);
    wire[input.name] = value ?? null;
  }
  for (const key of Object.keys(given)) {
    const input = spec.inputs.find((i) => i.key === key);
    if (!input) throw new TypeError(`program ${spec.name}: unexpected argument '${key}'`);
    if (input.provided) throw new TypeError(`program ${spec.name}: '${key}' is passed by the runtime, not by the caller`);
  }
  return { spec, args: wire };
}

/** A reply's outputs under their TypeScript names. */
function fromWire(spec: ProgramSpec<string, Signature, unknown>, reply: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of spec.outputs) out[key] = reply[spec.wireOutputs[key]!];
  return out;
}

/**
 * Run a program: one bridge round trip (plus a one-time compile), in the runtime holding
 * the handles passed in (else the shared one).
 *
 * @example
 * const { out } = await runProgram(axpy, { a: 2, x, y });
 */
export async function runProgram<P extends ProgramSpec<string, Signature, unknown>>(spec: P, args: ArgsOf<SignatureOf<P>>, runtime?: Runtime): Promise<ResultOf<OutputsOf<P>>> {
  const bound = bind(spec, args);
  // The runtime of the handles passed in: an object of a closed runtime must not run in a new one.
  const rt = runtime ?? runtimeOfHandles(bound.args) ?? (await getRuntime());
  const id = await compileProgram(spec, rt);
  return fromWire(spec, await programRun<Record<string, unknown>>(id, bound.args as Record<string, unknown>, rt)) as ResultOf<OutputsOf<P>>;
}

/** A hook of a pass: a bound program run on a module's inputs and outputs (see `HookSpec` in bridge/ops.ts). */
export interface PassHook {
  key: string;
  module: string;
  /** null: the hook only takes part in its module's all-gather. */
  program: BoundProgram | null;
  replace?: boolean;
  identity?: boolean;
  gather?: boolean;
}

/** One forward pass: its hooks and, optionally, a bound program on the logits. */
export interface Pass {
  hooks: readonly PassHook[];
  logits?: { key: string; program: BoundProgram } | null;
  grad?: boolean;
}

/** `hooks.run` with bound programs (compiled on first use). */
export interface PassesRequest extends Omit<HooksRunRequest, 'passes' | 'after'> {
  passes: readonly Pass[];
  /** Programs run once after the batches. */
  after?: readonly { key: string; program: BoundProgram }[];
}

/** A bound program as the runtime takes it: its compiled id and arguments. */
async function compiled(b: BoundProgram, rt: Runtime): Promise<{ program: string; args: Record<string, unknown> }> {
  return { program: await compileProgram(b.spec, rt), args: b.args as Record<string, unknown> };
}

/** Passes with their programs compiled (on first use) in `rt`. */
function compilePasses(passes: readonly Pass[], rt: Runtime): Promise<PassSpec[]> {
  return Promise.all(
    passes.map(async (p) => ({
      hooks: await Promise.all(p.hooks.map(async (h) => ({ ...h, ...(h.program ? await compiled(h.program, rt) : { program: null, args: {} }) }))),
      logits: p.logits ? { key: p.logits.key, ...(await compiled(p.logits.program, rt)) } : null,
      ...(p.grad ? { grad: true } : {}),
    })),
  );
}

/**
 * Run batches through forward passes whose hooks and logits call programs, then the `after`
 * programs: one bridge round trip (see `hooksRun`).
 */
export async function runPasses(req: PassesRequest): Promise<HooksRunReply> {
  const rt = req.model.runtime;
  const passes = await compilePasses(req.passes, rt);
  const after = await Promise.all((req.after ?? []).map(async (a) => ({ key: a.key, ...(await compiled(a.program, rt)) })));
  return hooksRun({ ...req, passes, after });
}

/** `hooks.forward` with bound programs: the passes over token ids already in the runtime, one bridge round trip. */
export async function forwardPasses(req: Omit<HooksForwardRequest, 'passes'> & { passes: readonly Pass[] }): Promise<HooksForwardReply> {
  return hooksForward({ ...req, passes: await compilePasses(req.passes, req.model.runtime) });
}
