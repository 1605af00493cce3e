/** `density_histogram`: latents by log10 firing density, half-decade bins from 1e-8 to 1, and the dead ones. */
import { z } from 'zod';
import type { CoderMetric } from './metric.js';
import { FIRE_COUNTS } from './sums.js';

/** Latents by log10 of their firing density: `counts[i]` in [edges[i], edges[i+1]); dead ones apart. */
export const DensityHistogramSchema = z.object({
  edges: z.array(z.number()),
  counts: z.array(z.number().int()),
  dead: z.number().int(),
});
export type DensityHistogram = z.infer<typeof DensityHistogramSchema>;

/** log10 firing-density bins from 1e-8 to 1, half a decade each. */
const EDGES = Array.from({ length: 17 }, (_, i) => -8 + i * 0.5);

/** A log10 firing-density histogram of per-latent firing counts over `tokens`. */
export function densityHistogram(counts: readonly number[], tokens: number): DensityHistogram {
  const out = new Array<number>(EDGES.length - 1).fill(0);
  let dead = 0;
  for (const c of counts) {
    if (c === 0) {
      dead += 1;
      continue;
    }
    const x = Math.log10(c / tokens);
    const i = Math.min(out.length - 1, Math.max(0, Math.floor((x - EDGES[0]!) / 0.5)));
    out[i]! += 1;
  }
  return { edges: EDGES, counts: out, dead };
}

export const densityHistogramMetric: CoderMetric<'density_histogram', DensityHistogram> = {
  kind: 'coder',
  name: 'density_histogram',
  schema: DensityHistogramSchema,
  sums: [FIRE_COUNTS],
  value: (r) => densityHistogram(r.latents.fire_counts!, r.tokens),
  log: false,
};
