/**
 * `sparsify export RUN --format FORMAT --out DIR`: write a run's coders as another library's
 * files (SAELens, circuit-tracer; src/export).
 */
import { Command } from 'commander';
import { closeRuntime } from '../bridge/runtime.js';
import { parseFlags } from '../config/errors.js';
import { ExportOptionsSchema, type ExportOptions } from '../config/export.js';
import { exportRun } from '../export/index.js';
import { fieldsOf, readOptions } from './options.js';
import { argumentErrorExit, runErrorExit, subcommand } from './subcommand.js';

const FIELDS = fieldsOf(ExportOptionsSchema.shape, 'export', ['run']);

export function buildExportCommand(): Command {
  return subcommand(
    'export',
    "Write a run's coders as another library's files: SAELens (SAE.load_from_disk) or circuit-tracer (a transcoder set).\nWhat a format cannot hold is refused in one line, before anything is written.",
    [['<run>', 'a run directory, a coder directory, or a Hub repo of coders']],
    FIELDS,
  );
}

/** Parse `sparsify export` arguments (after `export`). */
export function parseExportArgs(argv: string[]): ExportOptions {
  const command = buildExportCommand().exitOverride();
  command.parse(argv, { from: 'user' });
  const [run] = command.processedArgs as [string];
  return parseFlags(ExportOptionsSchema, { ...readOptions(command.opts<Record<string, unknown>>(), FIELDS), run }, 'sparsify export');
}

/** Run `sparsify export`; resolves with the exit code. */
export async function exportMain(argv: string[]): Promise<number> {
  let opts: ExportOptions;
  try {
    opts = parseExportArgs(argv);
  } catch (err) {
    return argumentErrorExit(err, 'export');
  }
  try {
    const files = await exportRun(opts.run, opts.format, opts.out, { hookpoints: opts.hookpoints });
    process.stdout.write(`Wrote ${files.length} files to ${opts.out} (${opts.format})\n`);
    return 0;
  } catch (err) {
    return runErrorExit(err, 'export');
  } finally {
    closeRuntime();
  }
}
