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
