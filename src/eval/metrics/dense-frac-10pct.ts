/** `dense_frac_10pct`: the share of latents firing on more than 10% of the tokens. */
import { denseFrac } from './dense-frac.js';

export const denseFrac10pct = denseFrac('dense_frac_10pct', 0.1);
