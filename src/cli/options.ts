/**
 * CLI flags generated from the zod schemas (the single source of truth): snake_case names
 * as the reference spells them, defaults and docs in --help, booleans as `--flag`,
 * `--flag true|false` or `--noflag`, lists as several values after one flag.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { z } from 'zod';
import { ConfigError } from '../config/errors.js';
import { snakeCase } from '../util/case.js';

type Kind = 'boolean' | 'number' | 'string' | 'enum' | 'number[]' | 'string[]';

/** One CLI flag and the config field behind it. */
export interface FieldSpec {
  key: string;
  flag: string;
  kind: Kind;
  description: string;
  defaultValue: unknown;
  /** How --help shows the default (a description ending in "(default: X)" gives X). */
  defaultLabel?: string;
  choices?: string[];
  /** A boolean's other values (a union of a boolean and literals: `--resume auto`). */
  words?: string[];
  group: string;
}

interface ZodLike {
  def: { type: string; innerType?: ZodLike; defaultValue?: unknown; element?: ZodLike; options?: ZodLike[]; values?: unknown[] };
  description?: string;
  options?: string[];
}

function unwrap(schema: ZodLike): { base: ZodLike; defaultValue: unknown; description?: string } {
  let s = schema;
  let defaultValue: unknown;
  const description = schema.description;
  while (s.def.type === 'default' || s.def.type === 'optional') {
    if (s.def.type === 'default') defaultValue = typeof s.def.defaultValue === 'function' ? (s.def.defaultValue as () => unknown)() : s.def.defaultValue;
    s = s.def.innerType!;
  }
  return { base: s, defaultValue, ...(description ?? s.description ? { description: description ?? s.description } : {}) };
}

/** Flag specs for every field of an object schema (nested objects are skipped). */
export function fieldsOf(shape: Record<string, unknown>, group: string, skip: string[] = []): FieldSpec[] {
  const out: FieldSpec[] = [];
  for (const [key, raw] of Object.entries(shape)) {
    if (skip.includes(key)) continue;
    const { base, defaultValue, description } = unwrap(raw as ZodLike);
    let kind: Kind;
    let words: string[] | undefined;
    switch (base.def.type) {
      case 'boolean':
        kind = 'boolean';
        break;
      case 'union': {
        // A boolean that also takes some words: true/false, or one of them.
        const options = base.def.options ?? [];
        const literals = options.filter((o) => o.def.type === 'literal').flatMap((o) => (o.def.values ?? []).map(String));
        if (!options.some((o) => o.def.type === 'boolean') || literals.length !== options.length - 1) continue;
        kind = 'boolean';
        words = literals;
        break;
      }
      case 'number':
        kind = 'number';
        break;
      case 'string':
        kind = 'string';
        break;
      case 'enum':
        kind = 'enum';
        break;
      case 'array':
        kind = base.def.element!.def.type === 'number' ? 'number[]' : 'string[]';
        break;
      default:
        continue;
    }
    const labelled = /^(.*?)\s*\(default: ([^)]*)\)$/.exec(description ?? '');
    out.push({
      key,
      flag: snakeCase(key),
      kind,
      description: labelled ? labelled[1]! : (description ?? ''),
      defaultValue,
      ...(labelled ? { defaultLabel: labelled[2]! } : {}),
      ...(base.options ? { choices: base.options } : {}),
      ...(words ? { words } : {}),
      group,
    });
  }
  return out;
}

function parseBoolean(flag: string, words: readonly string[] = []) {
  return (value: string): boolean | string => {
    const v = value.toLowerCase();
    if (['true', '1', 'yes'].includes(v)) return true;
    if (['false', '0', 'no'].includes(v)) return false;
    if (words.includes(v)) return v;
    throw new InvalidArgumentError(`--${flag} takes true${words.map((w) => `, ${w}`).join('')} or false, not "${value}"`);
  };
}

function parseNumber(flag: string) {
  return (value: string, previous?: unknown): number | number[] => {
    const n = Number(value.replace(/_/g, ''));
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`--${flag} takes a number, not "${value}"`);
    return Array.isArray(previous) ? [...previous, n] : n;
  };
}

/** Add the options for `fields` to `command`. */
export function addOptions(command: Command, fields: FieldSpec[]): void {
  for (const f of fields) {
    const shortK = f.flag === 'k' ? '-k, ' : '';
    // A default only words can say (one that depends on other settings) goes in the description.
    const doc = f.defaultValue === undefined && f.defaultLabel ? `${f.description} (default: ${f.defaultLabel})` : f.description;
    let option: Option;
    switch (f.kind) {
      case 'boolean':
        option = new Option(`${shortK}--${f.flag} [${['bool', ...(f.words ?? [])].join('|')}]`, `${doc} (--no${f.flag} to turn off)`).argParser(parseBoolean(f.flag, f.words));
        command.addOption(new Option(`--no${f.flag}`).hideHelp());
        // The usual Unix spelling too (commander reads it as --flag false).
        if (!f.flag.includes('_')) command.addOption(new Option(`--no-${f.flag}`).hideHelp());
        break;
      case 'number':
        option = new Option(`${shortK}--${f.flag} <n>`, doc).argParser(parseNumber(f.flag));
        break;
      case 'number[]':
        option = new Option(`--${f.flag} <n...>`, doc).argParser((v: string, prev: unknown) => parseNumber(f.flag)(v, prev === f.defaultValue ? [] : (prev ?? [])));
        break;
      case 'string[]':
        option = new Option(`--${f.flag} <value...>`, doc);
        break;
      case 'enum':
        option = new Option(`--${f.flag} <choice>`, doc).choices(f.choices!);
        break;
      default:
        option = new Option(`--${f.flag} <value>`, doc);
    }
    if (f.defaultValue !== undefined) option.default(f.defaultValue, f.defaultLabel ?? JSON.stringify(f.defaultValue));
    command.addOption(option);
  }
}

/** Read parsed options back into a camelCase object for `fields`. */
export function readOptions(opts: Record<string, unknown>, fields: FieldSpec[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    let v = opts[f.flag];
    if (f.kind === 'boolean' && opts[`no${f.flag}`] === true) {
      if (v === true && process.argv.includes(`--${f.flag}`)) throw new ConfigError(`--${f.flag} and --no${f.flag} contradict each other`);
      v = false;
    }
    if (v !== undefined) out[f.key] = v;
  }
  return out;
}

/** The parsed shape of a schema, for typing readOptions' result. */
export type Parsed<S extends z.ZodType> = z.input<S>;
