/** `ce_loss_recovered`: (ce_zero - ce_spliced) / (ce_zero - ce_clean). */
import { z } from 'zod';
import { fixed, type SpliceMetric } from './metric.js';

export const ceLossRecovered: SpliceMetric<'ce_loss_recovered'> = {
  kind: 'splice',
  name: 'ce_loss_recovered',
  schema: z.number(),
  value: (b) => (b.ceZero - b.ceSpliced) / (b.ceZero - b.ceClean),
  table: { head: 'CE recov.', format: fixed(4) },
  overview: { head: 'CE loss recovered', format: fixed(4) },
  log: true,
};
