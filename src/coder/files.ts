/**
 * Coder directories on disk, in the reference's layout (sparsify/sparse_coder.py:
 * save_to_disk / load_from_disk): `cfg.json` (the config and `d_in`) and `sae.safetensors`,
 * checked against each other before any tensor is used.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SparsifyError } from '../bridge/errors.js';
import { safetensorsHeader, saveTensors, type DType, type PyObject, type SafetensorsHeader } from '../bridge/ops.js';
import { coderConfigFromJson, coderConfigToJson, numLatentsFor, checkCoderShape, type SparseCoderConfig } from '../config/sparse-coder.js';
import { ConfigError } from '../config/errors.js';
import { activation, learnsThreshold } from '../activations/index.js';
import { writeFileAtomic } from '../util/files.js';

export const CFG_FILE = 'cfg.json';
export const WEIGHTS_FILE = 'sae.safetensors';

/** A coder directory could not be read: the message names the file and the problem. */
export class CoderFileError extends SparsifyError {
  override name = 'CoderFileError';
}

/** Read and validate `cfg.json`. */
export function readCoderConfig(dir: string): { cfg: SparseCoderConfig; dIn: number } {
  const path = join(dir, CFG_FILE);
  if (!existsSync(dir)) throw new CoderFileError(`${dir}: no such coder directory`);
  if (!existsSync(path)) throw new CoderFileError(`${path}: not found (a coder directory holds ${CFG_FILE} and ${WEIGHTS_FILE})`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CoderFileError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (json && typeof json === 'object' && (json as { cross_layer?: unknown }).cross_layer === true) {
    throw new CoderFileError(`${dir} holds a cross-layer transcoder (its ${CFG_FILE} says cross_layer): load it with CrossLayerTranscoder.load, not as a per-layer coder`);
  }
  try {
    const parsed = coderConfigFromJson(json, path);
    checkCoderShape(parsed.cfg, parsed.dIn, path);
    return parsed;
  } catch (err) {
    if (err instanceof ConfigError) throw new CoderFileError(err.message);
    throw err;
  }
}

/** The parameter shapes a coder with this config must have. */
export function expectedShapes(cfg: SparseCoderConfig, dIn: number, decoder: boolean): Record<string, number[]> {
  const m = numLatentsFor(cfg, dIn);
  const shapes: Record<string, number[]> = { 'encoder.weight': [m, dIn], 'encoder.bias': [m], b_dec: [dIn] };
  if (decoder) shapes.W_dec = [m, dIn];
  if (cfg.skipConnection) shapes.W_skip = [dIn, dIn];
  for (const p of activation(cfg.activation).params) shapes[p.name] = p.shape(m, dIn);
  if (learnsThreshold(cfg.activation, cfg.inferenceThreshold)) shapes.threshold = [];
  return shapes;
}

/**
 * Check the weights file's header against the config: every expected tensor present with
 * its shape, nothing unexpected (W_dec may be there when the decoder is not wanted).
 * Returns the floating dtype the coder will be loaded in.
 */
export async function checkWeights(dir: string, cfg: SparseCoderConfig, dIn: number, decoder: boolean): Promise<{ dtype: DType; names: string[] }> {
  const path = join(dir, WEIGHTS_FILE);
  if (!existsSync(path)) throw new CoderFileError(`${path}: not found (a coder directory holds ${CFG_FILE} and ${WEIGHTS_FILE})`);
  let header: SafetensorsHeader;
  try {
    header = await safetensorsHeader(path);
  } catch (err) {
    throw new CoderFileError((err as Error).message);
  }
  const expected = expectedShapes(cfg, dIn, decoder);
  for (const [name, shape] of Object.entries(expected)) {
    const found = header.tensors[name];
    if (!found) throw new CoderFileError(`${path}: tensor '${name}' is missing (expected shape [${shape.join(', ')}] from ${CFG_FILE})`);
    if (found.shape.length !== shape.length || found.shape.some((d, i) => d !== shape[i])) {
      throw new CoderFileError(
        `${path}: tensor '${name}' has shape [${found.shape.join(', ')}] but ${CFG_FILE} (d_in=${dIn}, ${numLatentsFor(cfg, dIn)} latents) needs [${shape.join(', ')}]`,
      );
    }
  }
  const allowed = new Set([...Object.keys(expected), 'W_dec']);
  const unexpected = Object.keys(header.tensors).filter((n) => !allowed.has(n));
  if (unexpected.length) throw new CoderFileError(`${path}: unexpected tensor(s) ${unexpected.join(', ')} for this ${CFG_FILE}`);
  const dtype = header.tensors['encoder.weight']!.dtype;
  return { dtype, names: Object.keys(expected) };
}

/**
 * Write a coder directory: `sae.safetensors` from `params` (a bundle named as in the file)
 * and `cfg.json`, each file atomically (temp file, fsync, rename).
 */
export async function writeCoderDir(dir: string, cfg: SparseCoderConfig, dIn: number, params: PyObject): Promise<void> {
  await mkdir(dir, { recursive: true });
  await saveTensors(join(dir, WEIGHTS_FILE), params, { format: 'pt' });
  await writeFileAtomic(join(dir, CFG_FILE), JSON.stringify(coderConfigToJson(cfg, dIn)));
}

/** Whether a directory's cfg.json says it holds a cross-layer transcoder. */
export function isCrossLayerDir(dir: string): boolean {
  const path = join(dir, CFG_FILE);
  if (!existsSync(path)) return false;
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { cross_layer?: unknown }).cross_layer === true;
  } catch {
    return false;
  }
}
