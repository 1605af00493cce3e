/** What every command takes about its own output. */
import { z } from 'zod';

export const OutputOptionsShape = {
  verbose: z.boolean().default(false).describe("Also show the libraries' own output (model loading, dataset preparation and download progress, warnings)"),
};
