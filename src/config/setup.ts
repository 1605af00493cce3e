import { z } from 'zod';

/** Options of `sparsify setup`: the Python environment the runtime computes in. */
export const SetupOptionsSchema = z
  .object({
    python: z.string().min(1).optional().describe('Use this Python (with torch, transformers, datasets and safetensors) instead of making <package>/.venv'),
    force: z.boolean().default(false).describe('Reinstall the packages even when the environment is up to date'),
  })
  .strict();

export type SetupOptions = z.output<typeof SetupOptionsSchema>;
