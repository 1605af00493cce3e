// Every optimizer, one line each: a new one is its own file in this folder and a line here.
export { signum } from './signum.js';
export { adam } from './adam.js';
export { muon } from './muon.js';
