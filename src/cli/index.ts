/**
 * The `sparsify` command: flags generated from the zod schemas, progress, and the bundled
 * default run. Not here: what training does (src/trainer) or the torchrun launcher
 * (src/launch).
 */
export { main, parseArgs, buildCommand, BUNDLED, type ParsedArgs } from './main.js';
