/** Dense latents: the share firing on more than a given share of the tokens. */
import { z } from 'zod';
import type { CoderMetric, Column } from './metric.js';
import { FIRE_COUNTS } from './sums.js';

/** The metric for latents firing on more than `share` of the tokens. */
export function denseFrac<N extends string>(name: N, share: number, table?: Column<number>): CoderMetric<N, number> {
  return {
    kind: 'coder',
    name,
    schema: z.number(),
    sums: [FIRE_COUNTS],
    value: (r) => r.latents.fire_counts!.filter((c) => c / r.tokens > share).length / r.latents.fire_counts!.length,
    ...(table ? { table } : {}),
    log: true,
  };
}
