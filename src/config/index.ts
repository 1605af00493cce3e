export * from './sparse-coder.js';
export { ConfigError, snakeCase, camelCase } from './errors.js';
