/**
 * Export formats: a run's coders written as other libraries' files (`sparsify export`,
 * `exportRun()`), one file per format (registry.ts lists them; format.ts is the contract).
 * The tensors they share come from one program (tensors.ts). Not here: the coders' own
 * format (src/coder) and publishing to the Hub.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { activation } from '../activations/index.js';
import { SparsifyError } from '../bridge/errors.js';
import { findRunConfig, noCodersMessage } from '../coder/discover.js';
import { fnmatcher } from '../util/fnmatch.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { CrossLayerTranscoder, isCrossLayerDir } from '../coder/cross-layer.js';
import type { ExportCoder, ExportCrossLayer, ExportFormat, ExportRun, InferenceRule } from './format.js';
import * as registered from './registry.js';

export type { ExportCoder, ExportCrossLayer, ExportFormat, ExportRun, InferenceRule } from './format.js';

type Registered = (typeof registered)[keyof typeof registered];
export type ExportFormatName = Registered['name'];

/** Every export format, by name. */
export const EXPORT_FORMATS: readonly ExportFormat<ExportFormatName>[] = Object.values(registered);
export const EXPORT_FORMAT_NAMES = EXPORT_FORMATS.map((f) => f.name) as [ExportFormatName, ...ExportFormatName[]];

/** How a coder encodes at inference: its activation's rule, unless it has learned an inference threshold. */
export async function inferenceRule(coder: SparseCoder | CrossLayerTranscoder): Promise<InferenceRule> {
  const act = activation(coder.cfg.activation);
  if (act.inference === 'per-latent-threshold') return { kind: 'jumprelu', threshold: 'per-latent' };
  // (A cross-layer transcoder's learned inference thresholds are not exported yet: it encodes by its own selection.)
  if (coder instanceof SparseCoder && (await coder.threshold()) !== undefined) return { kind: 'jumprelu', threshold: 'learned' };
  if (act.inference === 'topk') return { kind: 'topk', k: coder.cfg.k };
  return { kind: 'own', activation: act.name, canLearnThreshold: act.learnedThreshold !== undefined && coder instanceof SparseCoder };
}

/** Write the files into `out` all at once: into a folder beside it, renamed into place when whole. */
async function staged(out: string, write: (dir: string) => Promise<string[]>): Promise<string[]> {
  const target = resolve(out);
  const staging = await mkdtemp(join(dirname(target), `.${basename(target)}.partial-`));
  try {
    const files = await write(staging);
    if (existsSync(target)) await rm(target, { recursive: true });
    await rename(staging, target);
    return files;
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

/** A cross-layer transcoder's folder in a format that holds CLTs. */
async function exportCrossLayer(path: string, fmt: ExportFormat<ExportFormatName>, out: string): Promise<string[]> {
  if (!fmt.crossLayer) throw new SparsifyError(`--format ${fmt.name}: ${path} is a cross-layer transcoder, which this format does not hold (${EXPORT_FORMATS.filter((f) => f.crossLayer).map((f) => f.name).join(', ')} does)`);
  const clt = await CrossLayerTranscoder.load(path);
  const c: ExportCrossLayer = { dir: path, model: findRunConfig(path)?.config.model, clt, rule: await inferenceRule(clt) };
  const why = fmt.crossLayer.check(c);
  if (why) throw new SparsifyError(`--format ${fmt.name}: ${why}`);
  return staged(out, (dir) => fmt.crossLayer!.write(c, dir));
}

export interface ExportRunOptions {
  /** Only the coders whose names (or hookpoints) match these fnmatch patterns. */
  hookpoints?: readonly string[];
}

/**
 * Write the coders of the run at `path` (a run or coder directory, or a Hub repo) in `format`
 * into the new directory `out` (an existing, non-empty one is refused: nothing is overwritten).
 * The files appear all at once: they are written beside `out` and renamed into place. Resolves
 * with the files written, relative to `out`.
 */
export async function exportRun(path: string, format: ExportFormatName, out: string, options: ExportRunOptions = {}): Promise<string[]> {
  const fmt = EXPORT_FORMATS.find((f) => f.name === format);
  if (!fmt) throw new SparsifyError(`unknown export format ${JSON.stringify(format)} (allowed: ${EXPORT_FORMAT_NAMES.join(', ')})`);
  const target = resolve(out);
  if (existsSync(target) && readdirSync(target).length > 0) throw new SparsifyError(`${out} exists and is not empty: export writes into a new directory (nothing is overwritten)`);
  if (existsSync(path) && isCrossLayerDir(path)) return exportCrossLayer(path, fmt, out);
  const patterns = (options.hookpoints ?? []).map((p) => fnmatcher(p));
  const hookpoint = (name: string): string => name.split('/')[0]!;
  const loaded = [...(await SparseCoder.loadMany(path))].filter(([name]) => patterns.length === 0 || patterns.some((m) => m(name) || m(hookpoint(name))));
  if (loaded.length === 0) throw new SparsifyError(noCodersMessage(path, options.hookpoints ?? []));
  const coders: ExportCoder[] = [];
  for (const [name, coder] of loaded) coders.push({ name, hookpoint: hookpoint(name), coder, rule: await inferenceRule(coder) });
  const record = existsSync(path) ? findRunConfig(path)?.config : undefined;
  const run: ExportRun = { dir: path, model: record?.model, dataset: record?.dataset, ctxLen: record?.ctxLen, coders };
  const why = fmt.check(run);
  if (why) throw new SparsifyError(`--format ${format}: ${why}`);
  return staged(out, (dir) => fmt.write(run, dir));
}
