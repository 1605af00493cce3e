export { getRuntime, runningRuntime, closeRuntime, onInterrupt, choosePython, Runtime, type RuntimeInfo } from './runtime.js';
export { PyObject, Tensor, type DType, type TensorData } from './handles.js';
export { SparsifyError, PythonError, PythonProcessError } from './errors.js';
export { packageRoot } from './paths.js';
