/**
 * Configuration: one zod schema per config (the coder's, training's, a CLI run's, the data
 * fragment they share), the single source of truth for types, defaults, validation, CLI flags
 * and --help; and the typed reader of a run's record (run-record.ts). Activation and optimizer
 * choices come from their registries (src/activations, src/optimizers). Not here: how the CLI
 * turns schemas into flags (src/cli/options.ts).
 */
export * from './sparse-coder.js';
export * from './train.js';
export { ConfigError } from './errors.js';
export { snakeCase, camelCase, snakeKeys } from '../util/case.js';
export { EvalOptionsSchema, type EvalOptions } from './eval.js';
export { ExploreOptionsSchema, type ExploreOptions } from './explore.js';
export { sweepVariants, SWEEPABLE, type Variant, type VariantSettings } from './sweep.js';
export { CacheOptionsSchema, type CacheOptions } from './cache.js';
export { SetupOptionsSchema, type SetupOptions } from './setup.js';
export { ExportOptionsSchema, type ExportOptions } from './export.js';
export { UploadOptionsSchema, type UploadOptions } from './upload.js';
export { GenerateOptionsSchema, SteerOptionsSchema, type GenerateOptions, type SteerOptions } from './steer.js';
export { DataOptionsSchema, DATA_DEFAULTS, type DataOptions } from './data.js';
