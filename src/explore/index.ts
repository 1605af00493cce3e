/**
 * The explorer: a latent cache built in one pass over the data (latent-cache.ts, with the per-batch
 * programs in programs.ts), the data files a page loads (site.ts), the local server and the
 * static export (server.ts), the served explorer's model for typed prompts and steering (live.ts),
 * the packed form of the latent files (packing.ts), and the browser app (app/, compiled on its own for the DOM).
 * Not here: evaluation's pipeline it shares (src/eval), the CLI (src/cli/explore.ts).
 */
export { buildLatentCache, readLatentCache, coderHash, LatentCache, CacheIndexSchema, TOKENS_FILE, type BuildLatentCacheOptions, type CacheIndex, type LatentExample, type LatentRecord, type LatentTable } from './latent-cache.js';
export { LAYOUT } from './programs.js';
export { SiteData, CHUNK } from './site.js';
export { serveExplorer, exportExplorer, explorerApp, type ServeExplorerOptions, type ExplorerServer, type ExplorerOptions } from './server.js';
export { LiveExplorer, LiveBusyError, crossLayerLiveCoders, type LiveModels, type LiveOptions } from './live.js';
export type * from './payloads.js';
