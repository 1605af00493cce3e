/** camelCase (TypeScript) <-> snake_case (the reference's files, the CLI, and program names on the wire). */

/**
 * camelCase -> snake_case: `batchSize` -> `batch_size`, `loadIn8bit` -> `load_in_8bit` (a digit
 * after a whole word starts a word), `targetL0` -> `target_l0`, `l0Coefficient` -> `l0_coefficient`
 * (a digit after a single letter belongs to it, as L0 is spelt).
 */
export function snakeCase(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z][a-z]+)(\d)/g, '$1_$2')
    .toLowerCase();
}

/** snake_case -> camelCase. */
export function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** A copy of `value` with every object key, at any depth, in snake_case (config files). */
export function snakeKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [snakeCase(k), snakeKeys(v)]));
  }
  return value;
}
