/**
 * The Python runtime process, reached through pythonia (this folder is the only place that
 * imports it): start-up, one JSON request per call, handle bookkeeping, death and the
 * process lifecycle. One runtime per Node process, started on first use, ended at exit.
 * The ops themselves, typed, are in ops.ts: nothing else calls {@link Runtime.call}.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { PythonError, PythonProcessError, SparsifyError } from './errors.js';
import { packageRoot, pythonRecord, pythonRuntimeDir, venvPython } from './paths.js';
import { decodeReply, encodeRequest, type WireHandle } from './wire.js';

/** What the runtime reports about itself. */
export interface RuntimeInfo {
  python: string;
  executable: string;
  torch: string;
  cuda: boolean;
  device_count: number;
  bf16: boolean;
}

interface PythoniaModule {
  python: ((name: string) => Promise<PyBoot>) & { exit(): void };
  com: { proc: ChildProcess | null };
}
interface PyCallable {
  (...args: unknown[]): Promise<string>;
}
interface PyBoot {
  start: PyCallable;
  dispatch$: PyCallable;
}
interface Reply {
  ok: boolean;
  result?: unknown;
  error?: { type: string; message: string; traceback: string; user: boolean };
}

/** What sets up (or repairs) the Python environment: only the Python packages, nothing of npm's. */
const setupCommand = 'npx sparsify setup';

/**
 * Resolve which Python to run, at every start: SPARSIFY_PYTHON, else the interpreter `sparsify
 * setup --python` recorded, else the package's .venv.
 */
export function choosePython(env: NodeJS.ProcessEnv = process.env): string {
  const chosen = env.SPARSIFY_PYTHON;
  if (chosen) {
    const resolved = resolveExecutable(chosen, env);
    if (!resolved) {
      throw new PythonProcessError(
        `SPARSIFY_PYTHON=${chosen} is not an executable Python; point it at a Python with torch installed, or unset it to use ${venvPython}`,
      );
    }
    return resolved;
  }
  if (existsSync(pythonRecord)) {
    const recorded = readFileSync(pythonRecord, 'utf8').trim();
    const resolved = recorded ? resolveExecutable(recorded, env) : undefined;
    if (resolved) return resolved;
    throw new PythonProcessError(`${recorded} (recorded in ${pythonRecord} by \`${setupCommand} --python\`) is not an executable Python; run \`${setupCommand}\` again`);
  }
  if (!existsSync(venvPython)) {
    throw new PythonProcessError(
      `no Python environment for sparsify: run \`${setupCommand}\` (it creates ${join(packageRoot, '.venv')} from requirements.txt), or \`${setupCommand} --python /path/to/python\` to use a Python with torch`,
    );
  }
  return venvPython;
}

function resolveExecutable(cmd: string, env: NodeJS.ProcessEnv): string | undefined {
  const candidates = isAbsolute(cmd) || cmd.includes('/') ? [cmd] : (env.PATH ?? '').split(delimiter).map((dir) => join(dir, cmd));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

type InterruptHandler = (signal: NodeJS.Signals) => Promise<void> | void;

/** The running Python runtime. Get it with {@link getRuntime}. */
export class Runtime {
  readonly python: string;
  info!: RuntimeInfo;
  /** Bridge round trips made so far (for benchmarks and tests of the hot loop). */
  calls = 0;
  private pending = 0;
  private deathError: PythonProcessError | undefined;
  private rejectPending!: (err: Error) => void;
  private readonly death: Promise<never>;
  private readonly toFree: number[] = [];
  private readonly registry = new FinalizationRegistry<number>((id) => this.toFree.push(id));

  private constructor(
    python: string,
    private readonly pythonia: PythoniaModule,
    private readonly boot: PyBoot,
    readonly proc: ChildProcess,
  ) {
    this.python = python;
    this.death = new Promise<never>((_, reject) => {
      this.rejectPending = reject;
    });
    this.death.catch(() => undefined); // observed through races only
    proc.once('exit', (code, signal) => {
      if (this.deathError) return;
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      this.markDead(
        new PythonProcessError(
          `the Python runtime process (pid ${proc.pid}) ${how}; it may have run out of memory. Start a new Node process to continue`,
        ),
      );
    });
    this.setKeepAlive(false);
  }

  /** @internal */
  static async start(): Promise<Runtime> {
    const python = choosePython();
    const pythonia = await importPythonia(python);
    const proc = pythonia.com.proc;
    if (!proc) throw new PythonProcessError('pythonia did not start a Python process');
    // pythonia starts Python at import time; errors must not crash Node (e.g. EACCES).
    proc.on('error', (err) => {
      runtimeStartError = new PythonProcessError(`could not run ${python}: ${err.message}`);
    });
    const boot = (await raceWithExit(proc, pythonia.python('sparsify_runtime.boot'), python)) as PyBoot;
    const runtime = new Runtime(python, pythonia, boot, proc);
    // The boot handshake also reports the runtime's versions and devices.
    const started = JSON.parse(await runtime.guard(boot.start())) as { ok: boolean; message?: string; info?: RuntimeInfo };
    if (!started.ok || !started.info) {
      runtime.close();
      throw new PythonProcessError(
        `the Python runtime could not start in ${python}: ${started.message}. Run \`${setupCommand}\` to (re)create .venv, or \`${setupCommand} --python /path/to/python\` for a Python with torch, transformers, datasets and safetensors`,
      );
    }
    runtime.info = started.info;
    return runtime;
  }

  /**
   * Fail plainly unless `device` is a torch device this runtime has: 'cpu', or 'cuda' /
   * 'cuda:N' when torch sees that GPU ('mps' is passed through to torch).
   */
  checkDevice(device: string): void {
    const m = /^(cpu|mps|cuda)(?::(\d+))?$/.exec(device);
    if (!m) throw new SparsifyError(`device '${device}' is not a torch device (use 'cpu', 'cuda' or 'cuda:N')`);
    if (m[1] !== 'cuda') return;
    if (!this.info.cuda) throw new SparsifyError(`device '${device}' is not available: this runtime's torch ${this.info.torch} sees no CUDA GPU; use device 'cpu'`);
    const index = Number(m[2] ?? 0);
    if (index >= this.info.device_count) {
      throw new SparsifyError(`device '${device}' is not available: torch sees ${this.info.device_count} CUDA device(s) (cuda:0${this.info.device_count > 1 ? `..cuda:${this.info.device_count - 1}` : ''})`);
    }
  }

  /** Whether the process is gone; later calls reject at once. */
  get dead(): boolean {
    return this.deathError !== undefined;
  }

  /**
   * @internal One bridge round trip: run runtime op `op` with JSON-able `args` (handles
   * allowed); `adopt` turns each handle in the reply into a JS object. Python exceptions
   * reject with a {@link PythonError} carrying the Python message. Use the typed functions
   * of ops.ts instead.
   */
  async call(op: string, args: Record<string, unknown>, adopt: (h: WireHandle) => unknown): Promise<unknown> {
    if (this.deathError) throw this.deathError;
    this.calls += 1;
    const request = encodeRequest(op, args, this.toFree.splice(0));
    const replyText = await this.guard(this.boot.dispatch$(request, { $timeout: Infinity }));
    const reply = decodeReply(replyText, adopt) as Reply;
    if (!reply.ok) {
      const e = reply.error!;
      throw new PythonError(e.message, e.type, e.traceback);
    }
    return reply.result;
  }

  /** Free a handle now instead of waiting for garbage collection. */
  release(id: number): void {
    this.toFree.push(id);
  }

  /** @internal Track a handle object so Python frees it when JS drops it. */
  track(owner: object, id: number): void {
    this.registry.register(owner, id, owner);
  }

  /** @internal */
  untrack(owner: object): void {
    this.registry.unregister(owner);
  }

  /** End the Python process. Later calls reject. */
  close(): void {
    if (!this.deathError) {
      this.markDead(new PythonProcessError('the Python runtime was closed (closeRuntime()); objects it held cannot be used in a new runtime: load or create them again'));
    }
    try {
      this.pythonia.python.exit();
    } catch {
      // already gone
    }
    if (current && currentRuntime === this) {
      current = undefined;
      currentRuntime = undefined;
    }
  }

  private markDead(err: PythonProcessError): void {
    this.deathError = err;
    this.rejectPending(err);
    this.setKeepAlive(false);
  }

  /** Race a bridge call against the process's death, keeping Node alive meanwhile. */
  private async guard<T>(call: Promise<T>): Promise<T> {
    if (this.deathError) throw this.deathError;
    this.pending += 1;
    this.setKeepAlive(true);
    try {
      return await Promise.race([call, this.death]);
    } finally {
      this.pending -= 1;
      if (this.pending === 0) this.setKeepAlive(false);
    }
  }

  /** While idle the child must not keep Node running: a script ends when its work does. */
  private setKeepAlive(on: boolean): void {
    const channel = this.proc.channel as { ref(): void; unref(): void } | undefined | null;
    const bridgeLoop = (globalThis as { __pythonBridge?: { loop?: NodeJS.Timeout } }).__pythonBridge?.loop;
    bridgeLoop?.unref();
    if (on && !this.deathError) {
      this.proc.ref();
      channel?.ref();
    } else {
      this.proc.unref();
      channel?.unref();
    }
  }
}

let runtimeStartError: PythonProcessError | undefined;
let pythoniaModule: PythoniaModule | undefined;

async function importPythonia(python: string): Promise<PythoniaModule> {
  // pythonia spawns its Python on import (and on restart after a close), reading
  // PYTHON_BIN then: set it (and our PYTHONPATH) just for that moment.
  const saved = { bin: process.env.PYTHON_BIN, path: process.env.PYTHONPATH };
  process.env.PYTHON_BIN = python;
  process.env.PYTHONPATH = saved.path ? `${pythonRuntimeDir}${delimiter}${saved.path}` : pythonRuntimeDir;
  try {
    if (pythoniaModule) {
      const com = pythoniaModule.com as { proc: ChildProcess | null; start?: () => void };
      if (!com.proc) com.start?.(); // restart after closeRuntime()
      return pythoniaModule;
    }
    const mod = (await import('pythonia')) as unknown as { default?: PythoniaModule } & PythoniaModule;
    pythoniaModule = mod.default ?? mod;
    return pythoniaModule;
  } finally {
    restoreEnv('PYTHON_BIN', saved.bin);
    restoreEnv('PYTHONPATH', saved.path);
  }
}

function restoreEnv(key: string, value: string | undefined): void {
  if (value === undefined) delete process.env[key];
  else process.env[key] = value;
}

async function raceWithExit<T>(proc: ChildProcess, call: Promise<T>, python: string): Promise<T> {
  let onExit: (() => void) | undefined;
  const exited = new Promise<never>((_, reject) => {
    onExit = () =>
      reject(
        runtimeStartError ??
          new PythonProcessError(`the Python runtime (${python}) exited during start-up; run it by hand to see why`),
      );
    if (proc.exitCode !== null || proc.signalCode !== null) onExit();
    else proc.once('exit', onExit);
  });
  try {
    return await Promise.race([call, exited]);
  } catch (err) {
    if (err instanceof SparsifyError) throw err;
    const text = err instanceof Error ? err.stack ?? err.message : String(err);
    throw new PythonProcessError(`the Python runtime could not start in ${python}: ${lastLine(text)}`);
  } finally {
    if (onExit) proc.off('exit', onExit);
  }
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? text;
}

let current: Promise<Runtime> | undefined;
let currentRuntime: Runtime | undefined;
const interruptHandlers = new Set<InterruptHandler>();
let lifecycleInstalled = false;

/**
 * The shared Python runtime, started on first use.
 *
 * @example
 * const rt = await getRuntime();
 * console.log(rt.info.torch);
 */
export function getRuntime(): Promise<Runtime> {
  if (currentRuntime?.dead) {
    // After a crash every call fails the same clear way; a closed runtime may restart.
    return Promise.reject(new PythonProcessError('the Python runtime process has died; start a new Node process to continue'));
  }
  if (!current) {
    installLifecycle();
    current = Runtime.start().then(
      (rt) => {
        currentRuntime = rt;
        return rt;
      },
      (err: unknown) => {
        current = undefined;
        throw err;
      },
    );
  }
  return current;
}

/** The runtime if it has started, without starting it. */
export function runningRuntime(): Runtime | undefined {
  return currentRuntime && !currentRuntime.dead ? currentRuntime : undefined;
}

/** Close the shared runtime (it starts again on next use). */
export function closeRuntime(): void {
  currentRuntime?.close();
  current = undefined;
  currentRuntime = undefined;
}

/**
 * Run `handler` on SIGINT/SIGTERM before the runtime is closed and the process exits
 * (for example to save a checkpoint). Returns a function that removes it.
 */
export function onInterrupt(handler: InterruptHandler): () => void {
  installLifecycle();
  interruptHandlers.add(handler);
  return () => interruptHandlers.delete(handler);
}

function installLifecycle(): void {
  if (lifecycleInstalled) return;
  lifecycleInstalled = true;
  process.once('exit', () => {
    const proc = currentRuntime?.proc ?? pythoniaModule?.com.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  });
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    const code = 128 + (signal === 'SIGINT' ? 2 : 15);
    if (interrupted) {
      closeRuntime();
      process.exit(code);
    }
    interrupted = true;
    const others = process.listenerCount(signal) > 1;
    if (interruptHandlers.size === 0 && others) {
      // The application handles this signal itself: we only make sure Python ends with it.
      closeRuntime();
      return;
    }
    void (async () => {
      for (const handler of interruptHandlers) {
        try {
          await handler(signal);
        } catch (err) {
          process.stderr.write(`sparsify: ${(err as Error).message}\n`);
        }
      }
      closeRuntime();
      process.exit(code);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
