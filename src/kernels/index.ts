export * from './graph.js';
export { compileProgram, runProgram } from './program.js';
