/**
 * The bridge to the Python runtime: the child process and its lifecycle (runtime.ts), the
 * typed ops and the handles they pass (ops.ts), every op's arguments and reply (contract.ts,
 * checked against the Python functions by a test), the wire format (wire.ts), errors and paths.
 * The only folder that imports pythonia. It knows nothing about sparse coders or training.
 */
export { getRuntime, runningRuntime, closeRuntime, onInterrupt, choosePython, Runtime, type RuntimeInfo } from './runtime.js';
export { PyObject, Tensor, type DType, type TensorData } from './ops.js';
export { SparsifyError, PythonError, PythonProcessError } from './errors.js';
export { packageRoot } from './paths.js';
export { setupPython, type SetupPythonOptions } from './setup.js';
