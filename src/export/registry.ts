// Every export format, one line each: a new one is its own file in this folder and a line here.
export { saelens } from './saelens.js';
export { circuitTracer } from './circuit-tracer.js';
