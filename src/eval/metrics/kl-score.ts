/** `kl_score`: (kl_zero - kl_spliced) / kl_zero. */
import { z } from 'zod';
import { fixed, type SpliceMetric } from './metric.js';

export const klScore: SpliceMetric<'kl_score'> = {
  kind: 'splice',
  name: 'kl_score',
  schema: z.number(),
  value: (b) => (b.klZero - b.klSpliced) / b.klZero,
  table: { head: 'KL score', format: fixed(4) },
  overview: { head: 'KL score', format: fixed(4) },
  log: true,
};
