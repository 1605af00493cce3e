/**
 * Which modules to hook, as the reference's Trainer.__init__ resolves them
 * (sparsify/trainer.py; utils.py: get_layer_list): fnmatch patterns, or the layer list, then
 * the stride.
 */
import { modelConfig, modelModules, type ModuleInfo, type PyObject } from '../bridge/ops.js';
import { ConfigError } from '../config/errors.js';
import { fnmatcher, naturalSort } from '../util/fnmatch.js';

export type { ModuleInfo };

export interface HookpointRequest {
  hookpoints: readonly string[];
  layers: readonly number[];
  layerStride: number;
}

/**
 * Resolve hookpoint names: patterns are matched (case-sensitive fnmatch) against every
 * submodule name and naturally sorted; without patterns, the base model's layer list (the
 * ModuleList of length num_hidden_layers) gives `<list>.<i>` for the chosen layers. Then
 * every layer_stride-th is kept.
 */
export function resolveHookpoints(modules: readonly ModuleInfo[], numHiddenLayers: number | undefined, req: HookpointRequest): string[] {
  let names: string[];
  if (req.hookpoints.length) {
    const all = modules.map((m) => m.name);
    const matched = new Set<string>();
    for (const pattern of req.hookpoints) {
      const hits = all.filter(fnmatcher(pattern));
      if (hits.length === 0) {
        const examples = pickExamples(modules);
        throw new ConfigError(`hookpoint pattern '${pattern}' matches no module of the model; module names look like: ${examples.join(', ')}`);
      }
      hits.forEach((h) => matched.add(h));
    }
    names = naturalSort([...matched]);
  } else {
    const list = modules.find((m) => m.type === 'ModuleList' && m.length === numHiddenLayers);
    if (!list) {
      throw new ConfigError(
        `could not find the model's layer list (a ModuleList of num_hidden_layers=${numHiddenLayers} modules); pass --hookpoints (module names look like: ${pickExamples(modules).join(', ')})`,
      );
    }
    const count = list.length!;
    const bad = req.layers.filter((l) => l < 0 || l >= count);
    if (bad.length) throw new ConfigError(`layers ${bad.join(', ')} out of range: the model has layers 0..${count - 1}`);
    const layers = req.layers.length ? [...req.layers] : Array.from({ length: count }, (_, i) => i);
    names = layers.map((i) => `${list.name}.${i}`);
  }
  return names.filter((_, i) => i % req.layerStride === 0);
}

function pickExamples(modules: readonly ModuleInfo[]): string[] {
  // A few names from the first layer and the top level are the most telling.
  const top = modules.filter((m) => !m.name.includes('.')).map((m) => m.name);
  const layer = modules.filter((m) => /\.0(\.|$)/.test(m.name)).map((m) => m.name);
  return [...new Set([...top.slice(0, 3), ...layer.slice(0, 5)])].slice(0, 8);
}

/**
 * The hookpoints a config selects on a model; a ConfigError naming existing modules when a
 * pattern matches none.
 */
export async function modelHookpoints(model: { readonly model: PyObject }, req: HookpointRequest): Promise<string[]> {
  const modules = await modelModules(model.model);
  const { numHiddenLayers } = await modelConfig(model.model);
  return resolveHookpoints(modules, numHiddenLayers ?? undefined, req);
}

/**
 * The hookpoints a config selects among a cache's: all of them, or those its patterns match
 * (each pattern must match one); then every layer_stride-th. `--layers` names model layers,
 * which a cache does not have.
 */
export function cachedHookpoints(available: readonly string[], req: HookpointRequest): string[] {
  if (req.layers.length) throw new ConfigError(`layers: a cache has no layer list; pick its hookpoints with --hookpoints (it holds ${available.join(', ')})`);
  let names = [...available];
  if (req.hookpoints.length) {
    const matched = new Set<string>();
    for (const pattern of req.hookpoints) {
      const hits = available.filter(fnmatcher(pattern));
      if (hits.length === 0) throw new ConfigError(`hookpoint pattern '${pattern}' matches none of the cache's hookpoints (it holds ${available.join(', ')}); write a cache of those hookpoints with \`sparsify cache\``);
      hits.forEach((h) => matched.add(h));
    }
    names = naturalSort([...matched]);
  }
  return names.filter((_, i) => i % req.layerStride === 0);
}

/** The layer of a hookpoint such as `layers.3.mlp`, `model.layers.3.mlp` or `transformer.h.3.mlp`: the number after `layers.` or `h.`. */
export function layerOf(hookpoint: string): number | undefined {
  const m = /(?:^|\.)(?:layers|h|blocks)\.(\d+)(?:\.|$)/.exec(hookpoint);
  return m ? Number(m[1]) : undefined;
}

/** Why hookpoints cannot be a cross-layer transcoder's sources (one module of each of a contiguous run of layers, in order), or undefined. */
export function contiguousLayersProblem(hookpoints: readonly string[]): string | undefined {
  const layers = hookpoints.map(layerOf);
  const missing = hookpoints.find((_, i) => layers[i] === undefined);
  if (missing) return `${missing} has no layer number (a cross-layer transcoder spans layers: layers.N.mlp)`;
  const kind = (h: string): string => h.replace(/((?:^|\.)(?:layers|h|blocks)\.)\d+(?=\.|$)/, '$1N');
  const other = hookpoints.find((h) => kind(h) !== kind(hookpoints[0]!));
  if (other) return `${hookpoints[0]} and ${other} are different modules of their layers: a cross-layer transcoder reads and writes one module per layer`;
  for (let i = 1; i < layers.length; i++) {
    if (layers[i] !== layers[i - 1]! + 1) return `the layers must be a contiguous run (got ${layers.join(', ')})`;
  }
  return undefined;
}
