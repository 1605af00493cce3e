/** Configuration errors: one line naming the bad value and what is allowed. */
import type { z } from 'zod';
import { SparsifyError } from '../bridge/errors.js';
import { snakeCase } from '../util/case.js';

/** A configuration value that is not allowed; the message names the value and what is allowed. */
export class ConfigError extends SparsifyError {
  override name = 'ConfigError';
}

/** What a value of zod's expected type is, in words. */
const EXPECTED: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'text',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
};

type Issue = z.core.$ZodIssue & { input?: unknown; values?: unknown[]; keys?: string[]; expected?: string; minimum?: number | bigint; maximum?: number | bigint; inclusive?: boolean };

/**
 * One issue as words: `what` names the value (a flag such as `--out`, or a field); the result
 * reads "--out is required", "--k takes a whole number (got 1.5)", "--max_tokens must be more
 * than 0 (got 0)".
 */
function describe(issue: Issue, what: string, input: unknown, rename: (key: string) => string): string {
  const got = input === undefined ? '' : ` (got ${JSON.stringify(input)})`;
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return `${what} is required`;
      return `${what} takes ${EXPECTED[issue.expected ?? ''] ?? issue.expected}${got}`;
    case 'invalid_value':
      return `${what}: invalid value ${JSON.stringify(input)} (allowed: ${(issue.values ?? []).map(String).join(', ')})`;
    case 'too_small':
      return `${what} must be ${issue.inclusive ? 'at least' : 'more than'} ${String(issue.minimum)}${got}`;
    case 'too_big':
      return `${what} must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}${got}`;
    case 'unrecognized_keys':
      return `unknown option(s) ${(issue.keys ?? []).map((k) => rename(k)).join(', ')}`;
    default:
      // Custom rules word their own message with the values they concern.
      return `${what}: ${issue.message}`;
  }
}

/**
 * One line for all problems: `where: problem; problem`. Fields are named by `rename` of their
 * path (`sae.k`, `cfg.json`'s `activation`); with `flags`, as the command-line flag a user typed
 * (`--k`, `--out`).
 */
export function formatZodError(error: z.ZodError, where: string, rename: (key: string) => string = (k) => k, input?: unknown, flags = false): string {
  const problems = error.issues.map((raw) => {
    const issue = raw as Issue;
    const value = 'input' in issue && issue.input !== undefined ? issue.input : valueAt(input, issue.path);
    if (flags) {
      const field = issue.path.length ? String(issue.path[issue.path.length - 1]) : '';
      return describe(issue, field ? flagOf(field) : where, value, flagOf);
    }
    const path = issue.path.map((p) => rename(String(p))).join('.');
    let what = issue.message;
    if (issue.code === 'invalid_value' && issue.values) what = `invalid value ${JSON.stringify(value)} (allowed: ${issue.values.map(String).join(', ')})`;
    else if (issue.code === 'unrecognized_keys' && issue.keys) what = `unknown option(s) ${issue.keys.map((k) => rename(k)).join(', ')}`;
    else if (value !== undefined && issue.code !== 'custom') what = `${issue.message.replace(/^Invalid input: /, '')} (got ${JSON.stringify(value)})`;
    return path ? `${path}: ${what}` : what;
  });
  return `${where}: ${problems.join('; ')}`;
}

/** The flag a user types for a field: `-k` for k, `--snake_case` for the rest. */
export const flagOf = (field: string): string => (field === 'k' ? '-k' : `--${snakeCase(field)}`);

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

/** Parse command-line options: problems are worded by the flags a user typed. */
export function parseFlags<S extends z.ZodType>(schema: S, input: unknown, where: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ConfigError(formatZodError(result.error, where, undefined, input, true));
  return result.data;
}
