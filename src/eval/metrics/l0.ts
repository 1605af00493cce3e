/** `l0`: the mean number of latents per token whose activation is above zero. */
import { z } from 'zod';
import { fixed, type CoderMetric } from './metric.js';
import { L0_SUM } from './sums.js';

export const l0: CoderMetric<'l0', number> = {
  kind: 'coder',
  name: 'l0',
  schema: z.number(),
  sums: [L0_SUM],
  value: (r) => r.scalars.l0! / r.tokens,
  table: { head: 'L0', format: fixed(1) },
  overview: { head: 'L0', format: fixed(1) },
  log: true,
};
