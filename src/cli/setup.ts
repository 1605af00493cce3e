/**
 * `sparsify setup [--python PATH] [--force]`: set up (or repair) the Python environment the
 * runtime computes in, the first thing to run where sparsify is a dependency (npm 11 runs no
 * install script of a dependency unless the app allows it). Idempotent.
 */
import { Command } from 'commander';
import { setupPython } from '../bridge/setup.js';
import { parseFlags } from '../config/errors.js';
import { SetupOptionsSchema, type SetupOptions } from '../config/setup.js';
import { fieldsOf, readOptions } from './options.js';
import { argumentErrorExit, runErrorExit, subcommand } from './subcommand.js';

const FIELDS = fieldsOf(SetupOptionsSchema.shape, 'setup');

export function buildSetupCommand(): Command {
  return subcommand(
    'setup',
    'Set up the Python environment sparsify computes in: <package>/.venv with the packages of requirements.txt (skipped when up to date),\nor --python PATH to use a Python of your own (recorded; SPARSIFY_PYTHON, read at every start, overrides either).',
    [],
    FIELDS,
  );
}

export function parseSetupArgs(argv: string[]): SetupOptions {
  const command = buildSetupCommand().exitOverride();
  command.parse(argv, { from: 'user' });
  return parseFlags(SetupOptionsSchema, readOptions(command.opts<Record<string, unknown>>(), FIELDS), 'sparsify setup');
}

/** Run `sparsify setup`; resolves with the exit code. */
export async function setupMain(argv: string[]): Promise<number> {
  let opts: SetupOptions;
  try {
    opts = parseSetupArgs(argv);
  } catch (err) {
    return argumentErrorExit(err, 'setup');
  }
  try {
    await setupPython({ ...(opts.python ? { python: opts.python } : {}), force: opts.force });
    return 0;
  } catch (err) {
    return runErrorExit(err, 'setup', true);
  }
}
