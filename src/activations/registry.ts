// Every activation, one line each: a new one is its own file in this folder and a line here.
export { topk } from './topk.js';
export { groupmax } from './groupmax.js';
export { batchtopk } from './batchtopk.js';
export { jumprelu } from './jumprelu.js';
