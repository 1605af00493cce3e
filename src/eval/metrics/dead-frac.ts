/** `dead_frac`: the share of latents that never fired on the evaluated tokens. */
import { z } from 'zod';
import { percent, type CoderMetric } from './metric.js';
import { FIRE_COUNTS } from './sums.js';

export const deadFrac: CoderMetric<'dead_frac', number> = {
  kind: 'coder',
  name: 'dead_frac',
  schema: z.number(),
  sums: [FIRE_COUNTS],
  value: (r) => r.latents.fire_counts!.filter((c) => c === 0).length / r.latents.fire_counts!.length,
  table: { head: 'dead', format: percent },
  overview: { head: 'dead', format: percent },
  log: true,
};
