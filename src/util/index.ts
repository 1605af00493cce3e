/**
 * Small helpers shared by several folders: fnmatch patterns, natural sorting, local paths vs
 * Hub names, camelCase/snake_case, atomic files and folders (files.ts, staging.ts), file
 * hashes, whether a process lives, equality of JSON-like values. Nothing domain-specific.
 */
export { fnmatcher, naturalSort } from './fnmatch.js';
export { expandHome, looksLocal, localPath } from './paths.js';
export { snakeCase, camelCase, snakeKeys } from './case.js';
export { sameJson } from './same-json.js';
