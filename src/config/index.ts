export * from './sparse-coder.js';
export * from './train.js';
export { ConfigError, snakeCase, camelCase } from './errors.js';
