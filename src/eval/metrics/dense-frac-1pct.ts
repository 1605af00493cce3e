/** `dense_frac_1pct`: the share of latents firing on more than 1% of the tokens. */
import { denseFrac } from './dense-frac.js';
import { percent } from './metric.js';

export const denseFrac1pct = denseFrac('dense_frac_1pct', 0.01, { head: 'dense>1%', format: percent });
