/**
 * `--format circuit-tracer`: a transcoder run as a circuit-tracer transcoder set: `config.yaml`
 * (`model_kind: transcoder_set`, the model, the feature input and output hooks, the activation
 * and `k`) and `layer_{i}.safetensors` per layer (`W_enc` [M, D] as nn.Linear holds it, `b_enc`,
 * `W_dec` [M, D], `b_dec`, optional `W_skip`, and `activation_function.threshold` [M] for a
 * jumprelu set), which circuit-tracer finds by their names.
 *
 * Semantics: circuit-tracer's TopK selects among the raw pre-activations and applies no relu,
 * so where a token has fewer than k positive pre-activations it keeps negative values, which
 * this project's topk (relu first) sets to 0; the export cannot change that, and says so in the
 * README. Its JumpReLU passes `x * (x > theta)` without a relu; the export raises thresholds
 * below 0 to 0, which gives exactly this project's relu(x) * (x > theta). Coders that encode by
 * a learned inference threshold export as its JumpReLU, the threshold repeated per latent.
 * Every layer 0..L-1 needs its transcoder, all of one width, all with a skip connection or none.
 *
 * A cross-layer transcoder folder exports as circuit-tracer's CLT (`model_kind:
 * cross_layer_transcoder`): `W_enc_{i}.safetensors` (`W_enc_{i}` [M, D], `b_enc_{i}`,
 * `b_dec_{i}`, `threshold_{i}` for jumprelu) and `W_dec_{i}.safetensors` (`W_dec_{i}`
 * [M, n - i, D]), the names and shapes its `load_clt` reads; its sources must be layers 0..n-1.
 */
import { join } from 'node:path';
import { saveTensors } from '../bridge/ops.js';
import { writeFileAtomic } from '../util/files.js';
import { layerOf } from '../model/hookpoints.js';
import { ownSelectionMessage, type ExportCoder, type ExportCrossLayer, type ExportFormat, type ExportRun } from './format.js';
import { crossLayerSourceTensors, exportedTensors } from './tensors.js';


/** The hookpoint with its layer number replaced by `{i}`: one module per layer. */
const moduleOf = (hookpoint: string): string => hookpoint.replace(/((?:^|\.)(?:layers|h|blocks)\.)\d+(?=\.|$)/, '$1{i}');

/**
 * TransformerLens's names, relative to a block, of what a transcoder on this module reads and
 * writes: an MLP's input (after its layer norm) and output, or a whole block's residual stream
 * before and after it.
 */
export function featureHooks(hookpoint: string): { input: string; output: string } | undefined {
  if (/\.mlp$/.test(hookpoint)) return { input: 'ln2.hook_normalized', output: 'hook_mlp_out' };
  if (/(?:^|\.)(?:layers|h|blocks)\.\d+$/.test(hookpoint)) return { input: 'hook_resid_pre', output: 'hook_resid_post' };
  return undefined;
}

function layers(run: ExportRun): { byLayer: ExportCoder[] } | { why: string } {
  const tc = run.coders;
  const notTranscoder = tc.find((c) => !c.coder.structure.transcode);
  if (notTranscoder) return { why: `coder ${notTranscoder.name} is an SAE: circuit-tracer reads transcoder sets (train with --transcode)` };
  for (const c of tc) {
    if (c.rule.kind === 'own') return { why: ownSelectionMessage(c, 'circuit-tracer', 'its JumpReLU') };
  }
  const byLayer: ExportCoder[] = [];
  for (const c of tc) {
    const layer = layerOf(c.hookpoint);
    if (layer === undefined) return { why: `coder ${c.name}: no layer number in its hookpoint (circuit-tracer names one transcoder per layer, e.g. layers.3.mlp)` };
    if (byLayer[layer]) return { why: `coders ${byLayer[layer]!.name} and ${c.name} are both for layer ${layer}: export one run of one transcoder per layer (a sweep: pick one configuration with --hookpoints)` };
    byLayer[layer] = c;
  }
  const missing = [...byLayer.keys()].filter((i) => !byLayer[i]);
  if (missing.length) return { why: `no transcoder for layer${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: circuit-tracer needs one for every layer 0..${byLayer.length - 1}` };
  const first = byLayer[0]!;
  if (!featureHooks(first.hookpoint)) return { why: `coder ${first.name}: circuit-tracer's hooks are named for MLPs (layers.N.mlp) and whole blocks (layers.N); ${first.hookpoint} is neither` };
  for (const c of byLayer) {
    if (moduleOf(c.hookpoint) !== moduleOf(first.hookpoint)) return { why: `coders ${first.name} and ${c.name} are on different modules of their layers: a transcoder set has one input and one output hook` };
    if (c.coder.numLatents !== first.coder.numLatents) return { why: `coders ${first.name} and ${c.name} differ in width (${first.coder.numLatents} and ${c.coder.numLatents} latents): a transcoder set has one` };
    if (c.coder.structure.skipConnection !== first.coder.structure.skipConnection) return { why: `coders ${first.name} and ${c.name}: one has a skip connection and the other not (a transcoder set has them on every layer or none)` };
    if (c.rule.kind !== first.rule.kind) return { why: `coders ${first.name} and ${c.name} encode differently (${first.rule.kind} and ${c.rule.kind}): a transcoder set has one activation` };
    if (c.rule.kind === 'topk' && first.rule.kind === 'topk' && c.rule.k !== first.rule.k) return { why: `coders ${first.name} and ${c.name} differ in k (${first.rule.k} and ${c.rule.k}): a transcoder set has one` };
  }
  return { byLayer };
}

/**
 * Why a cross-layer transcoder cannot be circuit-tracer's (its CLT covers the layers 0..n-1 of
 * one module each, and encodes by relu or jump_relu), or undefined.
 */
function crossLayerProblem(c: ExportCrossLayer): string | undefined {
  const { clt, rule } = c;
  if (rule.kind === 'own') return `this cross-layer transcoder encodes by ${rule.activation}'s own selection, which circuit-tracer's CLT has no class for (topk and jumprelu export)`;
  const numbers = clt.layers.map(layerOf);
  if (numbers.some((n, i) => n !== i)) return `circuit-tracer's CLT has a source for every layer from 0; this one has layers ${clt.layers.join(', ')}`;
  const first = clt.layers[0]!;
  if (!featureHooks(first)) return `circuit-tracer's hooks are named for MLPs (layers.N.mlp) and whole blocks (layers.N); ${first} is neither`;
  const other = clt.layers.find((l) => moduleOf(l) !== moduleOf(first));
  if (other) return `layers ${first} and ${other} are different modules of their blocks: a CLT has one input and one output hook`;
  return undefined;
}

/** A YAML value: JSON's quoting is valid YAML. */
const yaml = (entries: Record<string, string | number>): string => `${Object.entries(entries).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n')}\n`;

export const circuitTracer: ExportFormat<'circuit-tracer'> = {
  name: 'circuit-tracer',
  summary: 'a transcoder run as a circuit-tracer transcoder set: config.yaml and layer_{i}.safetensors',
  check(run) {
    const l = layers(run);
    return 'why' in l ? l.why : undefined;
  },
  async write(run, out) {
    const l = layers(run);
    if ('why' in l) throw new Error(l.why);
    const first = l.byLayer[0]!;
    const config: Record<string, string | number> = {
      model_kind: 'transcoder_set',
      ...(run.model ? { model_name: run.model } : {}),
      feature_input_hook: featureHooks(first.hookpoint)!.input,
      feature_output_hook: featureHooks(first.hookpoint)!.output,
      scan: `sparsify:${moduleOf(first.hookpoint)}`,
      // Without an activation, circuit-tracer uses JumpReLU where the layer files hold thresholds.
      ...(first.rule.kind === 'topk' ? { activation: 'topk', k: first.rule.k } : {}),
    };
    const files = ['config.yaml'];
    await writeFileAtomic(join(out, 'config.yaml'), yaml(config));
    for (const [i, c] of l.byLayer.entries()) {
      const { threshold, ...rest } = await exportedTensors(c, { encoder: 'latents-by-in', clampThreshold: true });
      await saveTensors(join(out, `layer_${i}.safetensors`), { ...rest, ...(threshold ? { 'activation_function.threshold': threshold } : {}) });
      files.push(`layer_${i}.safetensors`);
    }
    return files;
  },
  crossLayer: {
    check: crossLayerProblem,
    async write(c, out) {
      const why = crossLayerProblem(c);
      if (why) throw new Error(why);
      const first = c.clt.layers[0]!;
      const config: Record<string, string | number> = {
        model_kind: 'cross_layer_transcoder',
        ...(c.model ? { model_name: c.model } : {}),
        feature_input_hook: featureHooks(first)!.input,
        feature_output_hook: featureHooks(first)!.output,
        scan: `sparsify:clt:${moduleOf(first)}`,
        // The transcoder set's keys for top-k (circuit-tracer's CLT loader reads relu or jump_relu only; README).
        ...(c.rule.kind === 'topk' ? { activation: 'topk', k: c.rule.k } : {}),
      };
      const files = ['config.yaml'];
      await writeFileAtomic(join(out, 'config.yaml'), yaml(config));
      for (const [i, source] of c.clt.sources.entries()) {
        const t = await crossLayerSourceTensors(c.clt.structure, source, c.rule.kind === 'jumprelu');
        await saveTensors(join(out, `W_enc_${i}.safetensors`), { [`W_enc_${i}`]: t.W_enc!, [`b_enc_${i}`]: t.b_enc!, [`b_dec_${i}`]: t.b_dec!, ...(t.threshold ? { [`threshold_${i}`]: t.threshold } : {}) });
        await saveTensors(join(out, `W_dec_${i}.safetensors`), { [`W_dec_${i}`]: t.W_dec! });
        files.push(`W_enc_${i}.safetensors`, `W_dec_${i}.safetensors`);
      }
      return files;
    },
  },
};
