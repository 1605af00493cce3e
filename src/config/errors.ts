/** Configuration errors: one line naming the bad value and what is allowed. */
import type { z } from 'zod';
import { SparsifyError } from '../bridge/errors.js';

/** A configuration value that is not allowed; the message names the value and what is allowed. */
export class ConfigError extends SparsifyError {
  override name = 'ConfigError';
}

/** One line per problem: `where: field: what is wrong`. */
export function formatZodError(error: z.ZodError, where: string, rename: (key: string) => string = (k) => k, input?: unknown): string {
  const problems = error.issues.map((issue) => {
    const path = issue.path.map((p) => rename(String(p))).join('.');
    const raw = { input: valueAt(input, issue.path), ...(issue as unknown as { input?: unknown; values?: unknown[]; keys?: string[] }) };
    let what = issue.message;
    if (issue.code === 'invalid_value' && raw.values) {
      what = `invalid value ${JSON.stringify(raw.input)} (allowed: ${raw.values.map(String).join(', ')})`;
    } else if (issue.code === 'unrecognized_keys' && raw.keys) {
      what = `unknown option(s) ${raw.keys.map((k) => rename(k)).join(', ')}`;
    } else if (raw.input !== undefined && issue.code !== 'custom') {
      // Custom rules word their own message with the values they concern.
      what = `${issue.message.replace(/^Invalid input: /, '')} (got ${JSON.stringify(raw.input)})`;
    }
    return path ? `${path}: ${what}` : what;
  });
  return `${where}: ${problems.join('; ')}`;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** Parse with `schema`, turning a zod error into a one-line {@link ConfigError}. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, where: string, rename?: (key: string) => string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ConfigError(formatZodError(result.error, where, rename, input));
  return result.data;
}
