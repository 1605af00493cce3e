/** `fvu`: as in training, per batch sum|y - y_hat|^2 / sum|y - mean y|^2, averaged over batches. */
import { z } from 'zod';
import { fixed, type CoderMetric } from './metric.js';
import { FVU_SUM } from './sums.js';

export const fvu: CoderMetric<'fvu', number> = {
  kind: 'coder',
  name: 'fvu',
  schema: z.number(),
  sums: [FVU_SUM],
  value: (r) => r.scalars.fvu_sum! / r.batches,
  table: { head: 'fvu', format: fixed(4) },
  overview: { head: 'fvu', format: fixed(4) },
  log: true,
};
