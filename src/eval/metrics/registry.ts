/**
 * Every metric, in report order (the order of `eval.json`'s fields and of the tables'
 * columns): a new one is its own file in this folder and a line in a list here.
 */
import { deadFrac } from './dead-frac.js';
import { denseFrac10pct } from './dense-frac-10pct.js';
import { denseFrac1pct } from './dense-frac-1pct.js';
import { densityHistogramMetric } from './density-histogram.js';
import { explainedVariance } from './explained-variance.js';
import { fvu } from './fvu.js';
import { l0 } from './l0.js';
import { ceDelta } from './ce-delta.js';
import { ceLossRecovered } from './ce-loss-recovered.js';
import { klScore } from './kl-score.js';
import { ceClean, ceSpliced, ceZero, klSpliced, klZero } from './splice-base.js';

/** A coder's own metrics. */
export const CODER_METRICS = [fvu, explainedVariance, l0, deadFrac, denseFrac1pct, denseFrac10pct, densityHistogramMetric] as const;

/** The spliced-in metrics (they need a language-model head). */
export const SPLICE_METRICS = [ceClean, ceSpliced, ceZero, ceDelta, ceLossRecovered, klSpliced, klZero, klScore] as const;
