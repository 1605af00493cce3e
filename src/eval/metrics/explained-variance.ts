/** `explained_variance`: 1 - sum|y - y_hat|^2 / (sum|y|^2 - N |mean y|^2), summed in float64 over all N tokens. */
import { z } from 'zod';
import { fixed, type CoderMetric } from './metric.js';
import { SQ_ERR, SUM_Y, SUM_Y2 } from './sums.js';

export const explainedVariance: CoderMetric<'explained_variance', number> = {
  kind: 'coder',
  name: 'explained_variance',
  schema: z.number(),
  sums: [SQ_ERR, SUM_Y2, SUM_Y],
  value: (r) => 1 - r.scalars.sq_err! / (r.scalars.sum_y2! - r.scalars.sum_y! / r.tokens),
  table: { head: 'expl.var', format: fixed(4) },
  overview: { head: 'explained var.', format: fixed(4) },
  log: true,
};
