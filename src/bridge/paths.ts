/** Where the package, its Python runtime and its virtual environment live. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: where package.json, python/ and .venv/ live (from src/ or dist/). */
export const packageRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The folder holding the Python runtime package `sparsify_runtime`. */
export const pythonRuntimeDir: string = join(packageRoot, 'python');

/** The project's own virtual environment, created by `npm install`. */
export const venvPython: string = join(packageRoot, '.venv', 'bin', 'python');

/** Where `sparsify setup --python PATH` records the interpreter to use instead of .venv. */
export const pythonRecord: string = join(packageRoot, '.sparsify-python');
