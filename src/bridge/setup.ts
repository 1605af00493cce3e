/**
 * Setting up the Python environment the runtime computes in, from the API (`setupPython`) and
 * the CLI (`sparsify setup`): the package's scripts/setup-python.mjs, the same steps npm's
 * postinstall runs where an app allows install scripts (npm 11 does not by default).
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PythonProcessError } from './errors.js';
import { packageRoot } from './paths.js';

export interface SetupPythonOptions {
  /**
   * Use this interpreter (it must import torch, transformers, datasets and safetensors):
   * checked and recorded in the package's `.sparsify-python`, no virtual environment made.
   * Without it, the package's `.venv` is made from requirements.txt (skipped when up to date).
   */
  python?: string;
  /** Reinstall the packages even when the environment is up to date. */
  force?: boolean;
  /** Each step, in one line (default: stderr). */
  log?: (line: string) => void;
}

interface SetupScript {
  ensurePythonEnv(options: { root: string; force: boolean; python?: string; say: (m: string) => void; explicit: boolean }): Promise<boolean>;
}

/**
 * Set up (or repair) the Python environment; idempotent. Rejects with a
 * {@link PythonProcessError} saying what went wrong and what to do.
 *
 * @example
 * await setupPython();                                  // <package>/.venv from requirements.txt
 * await setupPython({ python: '/opt/conda/bin/python' }); // a Python that has CUDA torch
 */
export async function setupPython(options: SetupPythonOptions = {}): Promise<void> {
  const script = (await import(pathToFileURL(join(packageRoot, 'scripts', 'setup-python.mjs')).href)) as SetupScript;
  const log = options.log ?? ((m: string) => process.stderr.write(`sparsify: ${m}\n`));
  let last = '';
  const ok = await script.ensurePythonEnv({
    root: packageRoot,
    force: options.force ?? false,
    ...(options.python ? { python: options.python } : {}),
    explicit: true,
    say: (m) => {
      last = m;
      log(m);
    },
  });
  if (!ok) throw new PythonProcessError(last || 'the Python environment could not be set up');
}
