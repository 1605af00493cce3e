/** `ce_delta`: ce_spliced - ce_clean. */
import { z } from 'zod';
import { fixed, type SpliceMetric } from './metric.js';

export const ceDelta: SpliceMetric<'ce_delta'> = {
  kind: 'splice',
  name: 'ce_delta',
  schema: z.number(),
  value: (b) => b.ceSpliced - b.ceClean,
  table: { head: 'CE delta', format: fixed(4) },
  log: true,
};
