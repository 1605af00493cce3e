/**
 * Activation caches: a model's activations at chosen hookpoints written once to disk
 * (`sparsify cache`: shards of safetensors and a JSON index) and read back for training
 * without the model (`--from_cache`). Not here: the training loop (src/trainer), the
 * runtime's shard reader (python/sparsify_runtime/activation_cache.py).
 */
export { writeActivationCache, estimateBytes, planIndex, defaultRowsPerShard, shardBytes, INDEX_FILE, type CachePlan, type WriteCacheOptions } from './write.js';
export { openActivationCache, readCacheIndex, type OpenedActivationCache } from './read.js';
export { ActivationCacheIndexSchema, CACHE_DTYPES, bytesPerRow, type ActivationCacheIndex, type CacheDType, type Shard } from './schema.js';
