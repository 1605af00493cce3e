/**
 * The spliced passes' own measurements, per scored next-token position: the model's CE
 * clean, with the hookpoint's output replaced by the coder's reconstruction (a transcoder: by
 * its prediction from the module's input), and with it zeroed; the KL divergence from the
 * clean next-token distribution with it spliced and zeroed.
 */
import { z } from 'zod';
import { fixed, type SpliceBase, type SpliceMetric } from './metric.js';

const base = <N extends string>(name: N, pick: (b: SpliceBase) => number, head?: string): SpliceMetric<N> => ({
  kind: 'splice',
  name,
  schema: z.number(),
  value: pick,
  ...(head ? { table: { head, format: fixed(4) } } : {}),
  log: true,
});

export const ceClean = base('ce_clean', (b) => b.ceClean, 'CE clean');
export const ceSpliced = base('ce_spliced', (b) => b.ceSpliced, 'CE spliced');
export const ceZero = base('ce_zero', (b) => b.ceZero);
export const klSpliced = base('kl_spliced', (b) => b.klSpliced, 'KL');
export const klZero = base('kl_zero', (b) => b.klZero);
