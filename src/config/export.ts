import { z } from 'zod';
import { EXPORT_FORMATS, EXPORT_FORMAT_NAMES } from '../export/index.js';

/** Options of `sparsify export RUN --format FORMAT --out DIR`: a run's coders as another library's files. */
export const ExportOptionsSchema = z
  .object({
    run: z.string().min(1).describe('A run directory, a coder directory, or a Hub repo of coders'),
    format: z.enum(EXPORT_FORMAT_NAMES).describe(`The format: ${EXPORT_FORMATS.map((f) => `${f.name} (${f.summary})`).join('; ')}`),
    out: z.string().min(1).describe('A new directory for the files (an existing non-empty one is refused)'),
    hookpoints: z.array(z.string().min(1)).default([]).describe('Export only the coders whose names match these patterns (fnmatch) (default: all)'),
  })
  .strict();

export type ExportOptions = z.output<typeof ExportOptionsSchema>;
