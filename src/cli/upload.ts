/**
 * `sparsify upload RUN REPO_ID`: publish a run's coders, its config, eval report and a model
 * card to the Hugging Face Hub in one commit (src/hub/upload.ts).
 */
import { Command } from 'commander';
import { parseFlags } from '../config/errors.js';
import { UploadOptionsSchema, type UploadOptions } from '../config/upload.js';
import { uploadRun } from '../hub/upload.js';
import { fieldsOf, readOptions } from './options.js';
import { argumentErrorExit, runErrorExit, subcommand } from './subcommand.js';

const FIELDS = fieldsOf(UploadOptionsSchema.shape, 'upload', ['run', 'repoId']);

export function buildUploadCommand(): Command {
  return subcommand(
    'upload',
    "Publish a run to the Hugging Face Hub in one commit: every coder directory (the layout loadMany and the reference's\nload_many read), the run's config.json and eval.json, and a model card (README.md). The Hub is HF_ENDPOINT's.",
    [
      ['<run>', 'the run directory (or one coder directory)'],
      ['<repo_id>', 'the model repo, owner/name'],
    ],
    FIELDS,
  );
}

/** Parse `sparsify upload` arguments (after `upload`). */
export function parseUploadArgs(argv: string[]): UploadOptions {
  const command = buildUploadCommand().exitOverride();
  command.parse(argv, { from: 'user' });
  const [run, repoId] = command.processedArgs as [string, string];
  return parseFlags(UploadOptionsSchema, { ...readOptions(command.opts<Record<string, unknown>>(), FIELDS), run, repoId }, 'sparsify upload');
}

/** Run `sparsify upload`; resolves with the exit code. */
export async function uploadMain(argv: string[]): Promise<number> {
  let opts: UploadOptions;
  try {
    opts = parseUploadArgs(argv);
  } catch (err) {
    return argumentErrorExit(err, 'upload');
  }
  try {
    const result = await uploadRun(opts.run, opts.repoId, { revision: opts.revision, private: opts.private, dryRun: opts.dryRun, ...(opts.hfToken ? { token: opts.hfToken } : {}) });
    if (opts.dryRun) process.stdout.write(`Would send ${result.files.length} files to ${result.repoId}:\n${result.files.map((f) => `  ${f}\n`).join('')}`);
    else process.stdout.write(`${result.created ? 'Created' : 'Updated'} ${result.repoId}: ${result.files.length} files in one commit${result.commit ? ` (${result.commit.url})` : ''}\n`);
    return 0;
  } catch (err) {
    return runErrorExit(err, 'upload');
  }
}
