/**
 * `--format saelens`: one folder per coder with what SAELens's `SAE.load_from_disk` reads
 * (its 6.x layout): `cfg.json` (`architecture`, `d_in`, `d_sae`, `dtype`, the architecture's
 * fields, and `metadata` with `sae_lens_version` so that it takes the 6.x path, the model and
 * the hook) and `sae_weights.safetensors` (`W_enc` [D, M], `b_enc`, `W_dec` [M, D], `b_dec`,
 * `threshold` [M], `W_skip` [D, D]: exactly its classes' tensor names).
 *
 * topk SAEs export as `topk` (SAELens selects before its relu, this project after: the same
 * values). A coder that encodes by thresholds (jumprelu; topk or batchtopk with a learned
 * inference threshold) exports as `jumprelu`, the learned scalar repeated for every latent, as
 * SAELens and dictionary_learning save BatchTopK for inference. Transcoders export as
 * `jumprelu_transcoder` / `jumprelu_skip_transcoder`; SAELens has no TopK transcoder.
 */
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { saveTensors } from '../bridge/ops.js';
import { writeFileAtomic } from '../util/files.js';
import { ownSelectionMessage, type ExportCoder, type ExportFormat, type ExportRun } from './format.js';
import { exportedTensors } from './tensors.js';

/** The SAELens version whose layout this writes (load_from_disk takes the pre-6.0 path without one). */
export const SAELENS_LAYOUT_VERSION = '6.0.0';

/** SAELens's architecture for a coder, or why it has none. */
function architecture(c: ExportCoder): { name: string } | { why: string } {
  const s = c.coder.structure;
  switch (c.rule.kind) {
    case 'own':
      return { why: ownSelectionMessage(c, 'SAELens', 'jumprelu') };
    case 'topk':
      if (s.transcode) return { why: `coder ${c.name}: SAELens has no TopK transcoder class (its transcoders are relu or jumprelu); a topk transcoder with a learned inference threshold exports as jumprelu_transcoder` };
      return { name: 'topk' };
    case 'jumprelu':
      if (!s.transcode) return { name: 'jumprelu' };
      return { name: s.skipConnection ? 'jumprelu_skip_transcoder' : 'jumprelu_transcoder' };
  }
}

function configOf(c: ExportCoder, run: ExportRun, arch: string): Record<string, unknown> {
  const s = c.coder.structure;
  const metadata: Record<string, unknown> = { sae_lens_version: SAELENS_LAYOUT_VERSION, hook_name: c.hookpoint };
  if (s.transcode) metadata.hook_name_out = c.hookpoint;
  if (run.model) metadata.model_name = run.model;
  if (run.ctxLen) metadata.context_size = run.ctxLen;
  if (run.dataset) metadata.dataset_path = run.dataset;
  return {
    architecture: arch,
    d_in: c.coder.dIn,
    d_sae: c.coder.numLatents,
    ...(s.transcode ? { d_out: c.coder.dIn } : {}),
    dtype: c.coder.dtype,
    device: 'cpu',
    // An SAE subtracts b_dec from its input before encoding; a transcoder does not.
    apply_b_dec_to_input: !s.transcode,
    normalize_activations: 'none',
    reshape_activations: 'none',
    ...(arch === 'topk' ? { k: c.coder.cfg.k, rescale_acts_by_decoder_norm: false } : {}),
    metadata,
  };
}

export const saelens: ExportFormat<'saelens'> = {
  name: 'saelens',
  summary: "a folder per coder that SAELens's SAE.load_from_disk reads: topk, jumprelu, jumprelu transcoders, batchtopk by its learned threshold",
  check(run) {
    for (const c of run.coders) {
      if (c.coder.structure.skipConnection && !c.coder.structure.transcode) return `coder ${c.name}: SAELens has no SAE with a skip connection`;
      const arch = architecture(c);
      if ('why' in arch) return arch.why;
    }
    return undefined;
  },
  async write(run, out) {
    const files: string[] = [];
    for (const c of run.coders) {
      const arch = architecture(c);
      if ('why' in arch) throw new Error(arch.why);
      const dir = join(out, c.name);
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(join(dir, 'cfg.json'), `${JSON.stringify(configOf(c, run, arch.name), null, 2)}\n`);
      const tensors = await exportedTensors(c, { encoder: 'in-by-latents', clampThreshold: false });
      await saveTensors(join(dir, 'sae_weights.safetensors'), tensors);
      files.push(join(c.name, 'cfg.json'), join(c.name, 'sae_weights.safetensors'));
    }
    return files;
  },
};
