/** Small helpers shared by several folders: fnmatch patterns and natural sorting. Nothing domain-specific. */
export { fnmatcher, naturalSort } from './fnmatch.js';
