/**
 * Steering's programs: the hooks that intervene on a module's output with a coder (add a
 * latent's decoder row; clamp a latent through the coder) and the programs on the logits
 * (pick the next token; keep the logits).
 */
import { HOOK_INPUTS, In, LOGITS_INPUTS, cachedProgram, defineProgram } from '../kernels/index.js';
import { decode, reconstruct } from '../math/sparse-coder.js';
import { structureTag, type CoderParamName, type CoderStructure } from '../math/structure.js';

const params = In.bundle<CoderParamName>();

/** outputs + scale * W_dec[latent], at every position (a scale of 0 leaves the output as it is, bit for bit). */
export function addDirectionHookProgram() {
  return cachedProgram('steer_add', () =>
    defineProgram('steer_add', { ...HOOK_INPUTS, params, latent: In.scalar(), scale: In.scalar() }, (_g, { outputs, params, latent, scale }) => {
      const row = params.get('W_dec').narrow(0, latent, 1).named('direction');
      return { output: outputs.add(row.mul(scale).typeAs(outputs)).named('steered') };
    }),
  );
}

/**
 * Clamp a latent through the coder, at every position: encode what the coder reads (the
 * output; a transcoder's input), set the latent's activation to `value`, decode, and add back
 * what the coder missed (output - reconstruction), so only the latent's part changes.
 */
export function clampHookProgram(s: CoderStructure) {
  return cachedProgram(`steer_clamp:${structureTag(s)}`, () =>
    defineProgram(`steer_clamp_${structureTag(s)}`, { ...HOOK_INPUTS, params, k: In.scalar(), latent: In.scalar(), value: In.scalar() }, (g, { inputs, outputs, params, k, latent, value }) => {
      const w = params.get('encoder.weight');
      const y = outputs.flatten(0, 1).typeAs(w).named('y');
      const x = s.transcode ? inputs.flatten(0, 1).typeAs(w).named('x') : y;
      const { recon, acts, indices } = reconstruct(g, params, x, k, s);
      const error = y.sub(recon).named('error');
      // The latent's own entry (where it was selected) is zeroed and one entry of `value` added.
      const others = g.where(indices.eq(latent), 0, acts).named('others');
      const rows = x.size(0);
      const values = g.cat([others, g.full([rows, 1], value, 'float32', w).typeAs(others)], 1).named('clamped_acts');
      const at = g.cat([indices, g.full([rows, 1], latent, 'int64', w)], 1).named('clamped_indices');
      let decoded = decode(g, params, { values, indices: at });
      if (s.skipConnection) {
        const wSkip = params.get('W_skip');
        decoded = decoded.add(x.matmul(wSkip.mT));
      }
      return { output: decoded.add(error).typeAs(outputs).reshapeAs(outputs).named('clamped') };
    }),
  );
}

/**
 * The next token after the last position: the argmax (greedy), or with `sampled` a draw from
 * softmax(logits / temperature) by the Gumbel-max trick, its uniforms from a generator seeded
 * with `seed` (the same seed, the same draw). Keeps the grown ids and the last logits; the
 * token comes back as the metric `token`.
 */
export function nextTokenProgram(sampled: boolean) {
  const name = sampled ? 'steer_sample' : 'steer_greedy';
  return cachedProgram(name, () =>
    defineProgram(name, { ...LOGITS_INPUTS, temperature: In.scalar(), seed: In.scalar() }, (g, { logits, inputIds, temperature, seed }) => {
      const last = logits.narrow(1, logits.size(1).sub(1), 1).squeeze(1).float().named('last_logits');
      let scores = last;
      if (sampled) {
        const gumbel = last.randomLike(seed).log().neg().log().neg().named('gumbel');
        scores = last.div(temperature).add(gumbel).named('scores');
      }
      const next = scores.max(-1).indices.named('next');
      return {
        keep: { ids: g.cat([inputIds, next.unsqueeze(1)], 1).named('ids'), last_logits: last },
        metrics: { token: next.sum().named('token') },
      };
    }),
  );
}

/** Keep the logits of every position, [tokens, vocab] in float32. */
export function keepLogitsProgram() {
  return cachedProgram('steer_logits', () => defineProgram('steer_logits', LOGITS_INPUTS, (_g, { logits }) => ({ keep: { logits: logits.flatten(0, 1).float().named('all_logits') }, metrics: {} })));
}
