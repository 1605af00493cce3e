/**
 * Sweeps: `--sweep "k=16,32" "expansion_factor=8,16"` trains the cross product of the listed
 * coder and optimizer settings side by side, every configuration on every hookpoint, from one
 * model pass. This module parses the list into named configurations (variants); it knows
 * nothing of training.
 */
import type { z } from 'zod';
import { optimizer, type OptimizerName } from '../optimizers/index.js';
import { camelCase } from '../util/case.js';
import { sameJson } from '../util/same-json.js';
import { ConfigError } from './errors.js';
import type { SparseCoderConfig } from './sparse-coder.js';

/** What a configuration may set: the coder's settings and the per-coder optimizer settings. */
export interface VariantSettings {
  sae: SparseCoderConfig;
  optimizer: OptimizerName;
  lr?: number | undefined;
  auxkAlpha: number;
  lrWarmupSteps: number;
  kDecaySteps: number;
  deadFeatureThreshold: number;
  l0Coefficient?: number | undefined;
  targetL0?: number | undefined;
}

/** One configuration of a sweep: its settings and its name (`k64-ef16`; '' without a sweep). */
export interface Variant extends VariantSettings {
  name: string;
}

/** The sweepable settings (snake_case, as on the command line), and how a name spells them. */
export const SWEEPABLE: Record<string, { short: string; coder: boolean }> = {
  k: { short: 'k', coder: true },
  expansion_factor: { short: 'ef', coder: true },
  num_latents: { short: 'nl', coder: true },
  activation: { short: 'act', coder: true },
  multi_topk: { short: 'mtk', coder: true },
  skip_connection: { short: 'skip', coder: true },
  normalize_decoder: { short: 'norm', coder: true },
  lr: { short: 'lr', coder: false },
  optimizer: { short: 'opt', coder: false },
  auxk_alpha: { short: 'auxk', coder: false },
  lr_warmup_steps: { short: 'warmup', coder: false },
  k_decay_steps: { short: 'kdecay', coder: false },
  dead_feature_threshold: { short: 'dead', coder: false },
  l0_coefficient: { short: 'l0c', coder: false },
  target_l0: { short: 'l0', coder: false },
  matryoshka_prefixes: { short: 'mat', coder: true },
};

const sweepableList = Object.keys(SWEEPABLE).join(', ');

/** The schema of a setting, to check each value: `coder` ones from the coder config, else the training config. */
export type FieldSchemas = { coder: Record<string, z.ZodType>; train: Record<string, z.ZodType> };

type Scalar = number | string | boolean;
/** A swept value: a list setting's value is written `a:b:c`, or `none` for the empty list. */
type Value = Scalar | Scalar[];

function parseScalar(raw: string): Scalar {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (/^[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) return Number(raw.replace(/_/g, ''));
  return raw;
}

function parseValue(raw: string, list: boolean): Value {
  if (!list) return parseScalar(raw);
  return raw === 'none' ? [] : raw.split(':').map((v) => parseScalar(v.trim()));
}


/** `key=v1,v2` entries as [key, values], checked against the settings' schemas. */
function parseEntries(entries: readonly string[], schemas: FieldSchemas): [string, Value[]][] {
  const out: [string, Value[]][] = [];
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new ConfigError(`sweep: "${entry}" is not key=v1,v2,... (e.g. "k=16,32,64")`);
    const key = entry.slice(0, eq).trim();
    const spec = SWEEPABLE[key];
    if (!spec) {
      const known = key in schemas.coder || camelCase(key) in schemas.coder || camelCase(key) in schemas.train;
      throw new ConfigError(
        known
          ? `sweep: ${key} cannot be swept: every configuration of a sweep shares it (sweepable: ${sweepableList})`
          : `sweep: unknown setting "${key}" (sweepable: ${sweepableList})`,
      );
    }
    if (out.some(([k]) => k === key)) throw new ConfigError(`sweep: ${key} is given twice; list all its values once ("${key}=a,b,c")`);
    const raws = entry
      .slice(eq + 1)
      .split(',')
      .map((v) => v.trim());
    if (raws.length === 0 || raws.some((v) => v === '')) throw new ConfigError(`sweep: "${entry}" has an empty value; list values as ${key}=a,b,c`);
    const schema = (spec.coder ? schemas.coder : schemas.train)[camelCase(key)]!;
    const values: Value[] = [];
    const list = schema.safeParse([]).success;
    for (const raw of raws) {
      const value = parseValue(raw, list);
      const checked = schema.safeParse(value);
      if (!checked.success) throw new ConfigError(`sweep: ${key}=${raw}: ${key} takes ${list ? `lists written a:b:c (or none) of ${valuesOf((schema as unknown as { unwrap(): { element: z.ZodType } }).unwrap().element)}` : valuesOf(schema)}`);
      if (values.some((v) => sameJson(v, checked.data))) throw new ConfigError(`sweep: ${key} lists ${raw} twice`);
      values.push(checked.data as Value);
    }
    out.push([key, values]);
  }
  return out;
}

/** What values a setting's schema takes, in words (probed: whole numbers, numbers, true or false, one of a list). */
function valuesOf(schema: z.ZodType): string {
  const ok = (v: unknown): boolean => schema.safeParse(v).success;
  const options = (schema as unknown as { unwrap?: () => { options?: readonly string[] }; options?: readonly string[] }).options ?? (schema as unknown as { unwrap?: () => { options?: readonly string[] } }).unwrap?.().options;
  if (options) return `one of ${options.join(', ')}`;
  if (ok(true) && !ok(1)) return 'true or false';
  if (ok(2) && !ok(2.5)) return ok(0) ? 'whole numbers, 0 or more' : 'whole numbers above 0';
  if (ok(2.5)) return ok(0) ? 'numbers, 0 or more' : 'numbers above 0';
  return 'other values';
}

const nameOf = (key: string, value: Value): string => {
  const short = SWEEPABLE[key]!.short;
  if (Array.isArray(value)) return value.length ? `${short}${value.join('_')}` : `${short}-none`;
  return typeof value === 'number' ? `${short}${value}` : `${short}-${String(value)}`;
};

/** What decides a coder's training: settings that do not matter (expansion_factor under num_latents) left out. */
function effective(v: VariantSettings): string {
  const { expansionFactor, ...sae } = v.sae;
  const lr = v.lr ?? null;
  return JSON.stringify({
    sae: v.sae.numLatents > 0 ? sae : { ...sae, expansionFactor },
    optimizer: v.optimizer,
    lr,
    auxkAlpha: v.auxkAlpha,
    // The warmup and k-decay steps and the dead threshold only matter where they are used.
    lrWarmupSteps: optimizer(v.optimizer).usesWarmup ? v.lrWarmupSteps : null,
    kDecaySteps: v.kDecaySteps,
    deadFeatureThreshold: v.deadFeatureThreshold,
    l0Coefficient: v.l0Coefficient ?? null,
    targetL0: v.targetL0 ?? null,
  });
}

/**
 * The configurations of a sweep over `base` (the cross product, the first key outermost), or
 * the one configuration `base` (named '') without entries. Throws a {@link ConfigError} naming
 * the bad entry: unknown or unsweepable keys, empty or repeated values, identical configurations.
 *
 * @example
 * sweepVariants(base, ['k=16,32', 'expansion_factor=8,16'], schemas).map((v) => v.name);
 * // ['k16-ef8', 'k16-ef16', 'k32-ef8', 'k32-ef16']
 */
export function sweepVariants(base: VariantSettings, entries: readonly string[], schemas: FieldSchemas): Variant[] {
  if (entries.length === 0) return [{ ...base, sae: { ...base.sae }, name: '' }];
  let variants: Variant[] = [{ ...base, sae: { ...base.sae }, name: '' }];
  for (const [key, values] of parseEntries(entries, schemas)) {
    const field = camelCase(key);
    variants = variants.flatMap((v) =>
      values.map((value) => {
        const next: Variant = { ...v, sae: { ...v.sae }, name: v.name ? `${v.name}-${nameOf(key, value)}` : nameOf(key, value) };
        if (SWEEPABLE[key]!.coder) (next.sae as unknown as Record<string, Value>)[field] = value;
        else (next as unknown as Record<string, Value>)[field] = value;
        return next;
      }),
    );
  }
  const seen = new Map<string, string>();
  for (const v of variants) {
    const key = effective(v);
    const twin = seen.get(key);
    if (twin) throw new ConfigError(`sweep: configurations ${twin} and ${v.name} would train the same coder (a setting they differ in does not apply); sweep values that matter`);
    seen.set(key, v.name);
  }
  return variants;
}
