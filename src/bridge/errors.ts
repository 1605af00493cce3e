/** Base class of every error this library raises on purpose. */
export class SparsifyError extends Error {
  override name = 'SparsifyError';
}

/** A Python exception raised inside the runtime, brought over the bridge. */
export class PythonError extends SparsifyError {
  override name = 'PythonError';
  /** The Python exception's class name, e.g. `ValueError`. */
  readonly pythonType: string;
  /** The full Python traceback, kept for debugging. */
  readonly pythonTraceback: string;
  constructor(message: string, pythonType: string, pythonTraceback: string) {
    super(message);
    this.pythonType = pythonType;
    this.pythonTraceback = pythonTraceback;
  }
}

/** The Python process is gone (killed, out of memory, crashed) or could not start. */
export class PythonProcessError extends SparsifyError {
  override name = 'PythonProcessError';
}

/**
 * A collective that failed because another rank is gone (gloo's connection errors, NCCL's
 * errors and the process group's timeouts): what to say instead of the raw torch message, or
 * undefined for any other error.
 */
export function collectiveFailure(err: unknown): string | undefined {
  if (!(err instanceof PythonError)) return undefined;
  const m = err.message;
  if (!/gloo|nccl|DistBackendError|DistNetworkError|Connection (reset|closed) by peer|ProcessGroup.*(timed out|Timeout)/i.test(m)) return undefined;
  const what = /timed out|timeout/i.test(m) ? 'a collective timed out waiting for another rank' : 'another rank left a collective (its connection closed)';
  return `${what}: a rank failed or was stopped; torchrun ends the job, or restarts it with --max_restarts (the torch error: ${m.slice(0, 160)}${m.length > 160 ? '...' : ''})`;
}
