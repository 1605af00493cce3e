/**
 * What `sparsify cache`, `eval` and `explore` share as commands: a commander command whose
 * flags come from one schema's fields, and how each kind of failure becomes an exit code and
 * one line on stderr (bad arguments: 2; a failure while running: 1, with the Python traceback
 * under SPARSIFY_DEBUG).
 */
import { Command } from 'commander';
import { SparsifyError } from '../bridge/errors.js';
import { addOptions, type FieldSpec } from './options.js';

/** `sparsify NAME` with positional `args` ([name in commander's syntax, description]) and the fields' flags. */
export function subcommand(name: string, description: string, args: readonly (readonly [string, string])[], fields: FieldSpec[]): Command {
  const command = new Command(`sparsify ${name}`).description(description);
  for (const [arg, about] of args) command.argument(arg, about);
  command.allowExcessArguments(false).configureOutput({ outputError: (str, write) => write(str) });
  addOptions(command, fields);
  return command;
}

/** The exit code for an error while parsing arguments (commander's own, or a config error). */
export function argumentErrorExit(err: unknown, name: string): number {
  const e = err as { code?: string; exitCode?: number; message: string };
  if (e.code === 'commander.helpDisplayed') return 0;
  if (e.code?.startsWith('commander.')) return e.exitCode ?? 2;
  process.stderr.write(`${e.message.startsWith('sparsify') ? '' : `sparsify ${name}: `}${e.message}\n`);
  return 2;
}

/**
 * The exit code for an error while running: our errors as their one line, others with their
 * stack. `said`: the message was printed already (as the command's last line of output).
 */
export function runErrorExit(err: unknown, name: string, said = false): number {
  const e = err as Error & { pythonTraceback?: string };
  if (!said || !(e instanceof SparsifyError)) process.stderr.write(`sparsify ${name}: ${e instanceof SparsifyError ? e.message : (e.stack ?? e.message)}\n`);
  if (process.env.SPARSIFY_DEBUG && e.pythonTraceback) process.stderr.write(`${e.pythonTraceback}\n`);
  return 1;
}
