import { z } from 'zod';

/** Options of `sparsify upload RUN REPO_ID`: publish a run's coders to the Hugging Face Hub. */
export const UploadOptionsSchema = z
  .object({
    run: z.string().min(1).describe('The run directory (or one coder directory) to publish'),
    repoId: z.string().min(1).describe('The model repo, owner/name (created if it does not exist)'),
    revision: z.string().min(1).default('main').describe('Branch to commit to'),
    private: z.boolean().default(false).describe('Create the repo private (when it does not exist yet)'),
    hfToken: z.string().optional().describe('Hugging Face token (default: HF_TOKEN, else the token file huggingface-cli login writes)'),
    dryRun: z.boolean().default(false).describe('List the files that would be sent; send nothing'),
  })
  .strict();

export type UploadOptions = z.output<typeof UploadOptionsSchema>;
