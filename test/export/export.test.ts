// sparsify export: the files SAELens's SAE.load_from_disk and circuit-tracer's transcoder-set
// loader read (names, shapes, config keys, checked by test/helpers/formats.py, restated from
// their sources), and their math on those files gives this project's encodings and
// reconstructions; what a format cannot hold is refused in one line, before anything is written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import type { Tensor } from '../../src/bridge/ops.js';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { CrossLayerTranscoder } from '../../src/coder/cross-layer.js';
import type { SparseCoderConfigInput } from '../../src/config/sparse-coder.js';
import { exportRun } from '../../src/export/index.js';
import { runCli } from '../helpers/cli.js';
import { py, randn } from '../helpers/python.js';

const HELPER = new URL('../helpers/formats.py', import.meta.url).pathname;
const PRELUDE = `import pathlib\nfm = {}\nexec(pathlib.Path(helper).read_text(), fm)\n`;

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-export-'));
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

/** A run directory of coders (by hookpoint), with a run record naming its model and data. */
async function makeRun(name: string, coders: Record<string, { cfg: SparseCoderConfigInput; setup?: string }>): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: 'tiny/model', dataset: 'tiny/text', ctx_len: 16 }));
  let seed = 1;
  for (const [hookpoint, { cfg, setup }] of Object.entries(coders)) {
    const coder = await SparseCoder.create(16, { numLatents: 48, ...cfg }, { seed: seed++ });
    // Transcoders start with a zero decoder: give every coder weights worth comparing.
    await py(`g = torch.Generator().manual_seed(s)\nwith torch.no_grad():\n  p["W_dec"].copy_(torch.randn(p["W_dec"].shape, generator=g) * 0.3)\n  p["b_dec"].copy_(torch.randn(p["b_dec"].shape, generator=g) * 0.1)\n  if "W_skip" in p: p["W_skip"].copy_(torch.randn(p["W_skip"].shape, generator=g) * 0.1)\n${setup ?? ''}`, { p: coder.params, s: seed });
    await coder.saveToDisk(join(dir, hookpoint));
  }
  return dir;
}

/** This project's inference on x: the dense activations and the reconstruction (with the skip connection). */
async function ours(coder: SparseCoder, x: Tensor): Promise<{ acts: Tensor; out: Tensor }> {
  const { topActs, topIndices, preActs } = await coder.encode(x);
  const decoded = await coder.decode(topActs, topIndices);
  return py<{ acts: Tensor; out: Tensor }>('acts = torch.zeros_like(pre).scatter_add_(1, idx, vals)\nout = dec + (x @ p["W_skip"].T if "W_skip" in p else 0)\nresult = {"acts": acts, "out": out}', { pre: preActs, idx: topIndices, vals: topActs, dec: decoded, x, p: coder.params });
}

describe('sparsify export --format saelens', () => {
  it('writes what SAE.load_from_disk reads, and SAELens\'s math on it gives the same encodings and reconstructions', async () => {
    const run = await makeRun('saelens-run', {
      'layers.0': { cfg: { activation: 'topk', k: 3 } },
      'layers.1': { cfg: { activation: 'jumprelu' }, setup: 'with torch.no_grad(): p["threshold"].copy_(torch.rand(48, generator=g) * 0.4 - 0.05)' },
      // A learned inference threshold: exported as jumprelu, the threshold for every latent.
      'layers.2': { cfg: { activation: 'batchtopk', k: 3 }, setup: 'with torch.no_grad(): p["threshold"].fill_(0.2)' },
      'layers.3.mlp': { cfg: { activation: 'jumprelu', transcode: true, skipConnection: true }, setup: 'with torch.no_grad(): p["threshold"].copy_(torch.rand(48, generator=g) * 0.4)' },
    });
    const out = join(work, 'saelens-out');
    const files = await exportRun(run, 'saelens', out);
    expect(files.sort()).toEqual(['layers.0', 'layers.1', 'layers.2', 'layers.3.mlp'].flatMap((h) => [join(h, 'cfg.json'), join(h, 'sae_weights.safetensors')]).sort());
    const coders = await SparseCoder.loadMany(run);
    const x = await randn([24, 16], 5);
    const want = { 'layers.0': 'topk', 'layers.1': 'jumprelu', 'layers.2': 'jumprelu', 'layers.3.mlp': 'jumprelu_skip_transcoder' };
    for (const [name, arch] of Object.entries(want)) {
      const mine = await ours(coders.get(name)!, x);
      const r = await py<{ arch: string; hook: string; model: string; acts: number; out: number; active: number }>(
        `${PRELUDE}cfg, t = fm["saelens_load"](folder)
acts, out = fm["saelens_forward"](cfg, t, x)
result = {"arch": cfg["architecture"], "hook": cfg["metadata"]["hook_name"], "model": cfg["metadata"]["model_name"], "acts": (acts - mine_acts).abs().max().item(), "out": (out - mine_out).abs().max().item(), "active": int((acts > 0).sum())}`,
        { helper: HELPER, folder: join(out, name), x, mine_acts: mine.acts, mine_out: mine.out },
      );
      expect(r.arch).toBe(arch);
      expect(r.hook).toBe(name);
      expect(r.model).toBe('tiny/model');
      expect(r.active).toBeGreaterThan(0);
      expect(r.acts).toBeLessThan(1e-5);
      expect(r.out).toBeLessThan(1e-5);
    }
  });

  it('refuses in one line what SAELens cannot hold, and writes nothing', async () => {
    const cases: [SparseCoderConfigInput, RegExp][] = [
      [{ activation: 'groupmax', k: 4 }, /^--format saelens: coder layers\.0: SAELens has no class for groupmax's selection$/],
      [{ activation: 'batchtopk', k: 3 }, /^--format saelens: coder layers\.0: SAELens has no class for batchtopk's selection; with a learned inference threshold \(--inference_threshold/],
      [{ activation: 'topk', k: 3, transcode: true }, /^--format saelens: coder layers\.0: SAELens has no TopK transcoder class/],
    ];
    for (const [i, [cfg, message]] of cases.entries()) {
      const run = await makeRun(`refused-${i}`, { 'layers.0': { cfg } });
      const out = join(work, `refused-out-${i}`);
      await expect(exportRun(run, 'saelens', out)).rejects.toThrow(message);
      expect(existsSync(out)).toBe(false);
    }
    expect(readdirSync(work).filter((f) => f.includes('.partial-'))).toEqual([]);
  });
});

describe('sparsify export --format circuit-tracer', () => {
  for (const kind of ['topk', 'jumprelu'] as const) {
    it(`writes a transcoder set circuit-tracer loads (${kind}), and its math on it gives this project's`, async () => {
      const cfg: SparseCoderConfigInput = kind === 'topk' ? { activation: 'topk', k: 3, transcode: true } : { activation: 'jumprelu', transcode: true, skipConnection: true };
      // A threshold below 0 is raised to 0: circuit-tracer's jump has no relu.
      const setup = kind === 'jumprelu' ? 'with torch.no_grad(): p["threshold"].copy_(torch.rand(48, generator=g) * 0.4 - 0.1)' : '';
      const run = await makeRun(`ct-${kind}`, { 'layers.0.mlp': { cfg, setup }, 'layers.1.mlp': { cfg, setup } });
      const out = join(work, `ct-out-${kind}`);
      expect((await exportRun(run, 'circuit-tracer', out)).sort()).toEqual(['config.yaml', 'layer_0.safetensors', 'layer_1.safetensors']);
      const coders = await SparseCoder.loadMany(run);
      // Inputs whose tokens all have at least k positive pre-activations: there circuit-tracer's
      // TopK (no relu) and this project's (relu first) agree.
      const x = await py<Tensor>('g = torch.Generator().manual_seed(3)\nresult = torch.randn(24, 16, generator=g) * 3', {});
      for (const [i, name] of ['layers.0.mlp', 'layers.1.mlp'].entries()) {
        const mine = await ours(coders.get(name)!, x);
        const r = await py<{ config: Record<string, unknown>; acts: number; out: number; keys: string[] }>(
          `${PRELUDE}config, files = fm["circuit_tracer_load"](folder)
acts, out = fm["circuit_tracer_forward"](config, files[i], x)
result = {"config": config, "acts": (acts - mine_acts).abs().max().item(), "out": (out - mine_out).abs().max().item(), "keys": sorted(files[i])}`,
          { helper: HELPER, folder: out, i, x, mine_acts: mine.acts, mine_out: mine.out },
        );
        expect(r.config).toMatchObject({ model_kind: 'transcoder_set', model_name: 'tiny/model', feature_input_hook: 'ln2.hook_normalized', feature_output_hook: 'hook_mlp_out' });
        if (kind === 'topk') expect(r.config).toMatchObject({ activation: 'topk', k: 3 });
        else expect(r.config.activation).toBeUndefined();
        expect(r.keys).toEqual(kind === 'topk' ? ['W_dec', 'W_enc', 'b_dec', 'b_enc'] : ['W_dec', 'W_enc', 'W_skip', 'activation_function.threshold', 'b_dec', 'b_enc']);
        expect(r.acts).toBeLessThan(1e-5);
        expect(r.out).toBeLessThan(1e-5);
      }
    });
  }

  it('refuses SAEs, a missing layer and a non-empty --out in one line; the CLI says so and exits 1 (as commander does for a bad choice)', async () => {
    const sae = await makeRun('ct-sae', { 'layers.0.mlp': { cfg: { k: 3 } } });
    await expect(exportRun(sae, 'circuit-tracer', join(work, 'ct-x'))).rejects.toThrow(/^--format circuit-tracer: coder layers\.0\.mlp is an SAE: circuit-tracer reads transcoder sets/);
    const gap = await makeRun('ct-gap', { 'layers.0.mlp': { cfg: { k: 3, transcode: true } }, 'layers.2.mlp': { cfg: { k: 3, transcode: true } } });
    await expect(exportRun(gap, 'circuit-tracer', join(work, 'ct-y'))).rejects.toThrow(/^--format circuit-tracer: no transcoder for layer 1: circuit-tracer needs one for every layer 0\.\.2$/);
    const full = join(work, 'not-empty');
    mkdirSync(full);
    writeFileSync(join(full, 'keep.txt'), 'mine');
    await expect(exportRun(gap, 'saelens', full)).rejects.toThrow(/not-empty exists and is not empty: export writes into a new directory/);
    expect(readdirSync(full)).toEqual(['keep.txt']);
    const notSet = await runCli(['export', sae, '--format', 'circuit-tracer', '--out', join(work, 'ct-z')]);
    const badFormat = await runCli(['export', sae, '--format', 'onnx', '--out', join(work, 'ct-z')]);
    expect(notSet.code).toBe(1);
    expect(badFormat.code).toBe(1);
    expect(notSet.err).toMatch(/^sparsify export: --format circuit-tracer: coder layers\.0\.mlp is an SAE/);
    expect(badFormat.err).toMatch(/onnx/);
    expect(badFormat.err).toMatch(/saelens, circuit-tracer/);
  });
});

describe('sparsify export --format circuit-tracer, cross-layer transcoders', () => {
  for (const kind of ['jumprelu', 'topk'] as const) {
    it(`writes a CLT folder as circuit-tracer's cross-layer transcoder (${kind})${kind === 'jumprelu' ? ', and its load_clt math gives this project\'s encoding and reconstructions' : ''}`, async () => {
      const layers = ['layers.0.mlp', 'layers.1.mlp', 'layers.2.mlp'];
      const clt = await CrossLayerTranscoder.create(16, layers, kind === 'topk' ? { k: 3, numLatents: 24 } : { numLatents: 24, activation: 'jumprelu' }, { seed: 4 });
      await py(
        `g = torch.Generator().manual_seed(3)
with torch.no_grad():
    for p in ps:
        for n in ("W_dec", "b_dec", "encoder.bias"): p[n].copy_(torch.randn(p[n].shape, generator=g) * 0.3)
        if "threshold" in p and p["threshold"].dim() == 1: p["threshold"].copy_(torch.rand(p["threshold"].shape, generator=g) * 0.3)
result = None`,
        { ps: clt.sources },
      );
      const dir = join(work, `clt-${kind}`);
      await clt.saveToDisk(dir);
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: 'tiny/model', dataset: 'tiny/text', ctx_len: 16 }));
      const out = join(work, `clt-${kind}-ct`);
      expect((await exportRun(dir, 'circuit-tracer', out)).sort()).toEqual(['W_dec_0.safetensors', 'W_dec_1.safetensors', 'W_dec_2.safetensors', 'W_enc_0.safetensors', 'W_enc_1.safetensors', 'W_enc_2.safetensors', 'config.yaml']);
      const xs = await Promise.all(layers.map((_, i) => randn([10, 16], 60 + i)));
      const codes = await clt.encode(xs);
      const recon = await clt.decode(codes);
      const r = await py<{ config: Record<string, unknown>; acts: number; out: number; threshold: boolean }>(
        `${PRELUDE}config, state = fm["circuit_tracer_load_clt"](folder)
x = torch.stack(xs)
features, out = fm["circuit_tracer_clt_forward"](state, x)
mine = torch.stack([torch.zeros(10, 24).scatter_add(1, c["topIndices"], c["topActs"]) for c in codes])
result = {"config": config, "threshold": "threshold" in state, "acts": float((features - mine).abs().max()), "out": float((out - torch.stack(recon)).abs().max())}`,
        { helper: HELPER, folder: out, xs, codes: codes.map((c) => ({ topActs: c.topActs, topIndices: c.topIndices })), recon },
      );
      expect(r.config).toMatchObject({ model_kind: 'cross_layer_transcoder', model_name: 'tiny/model', feature_input_hook: 'ln2.hook_normalized', feature_output_hook: 'hook_mlp_out' });
      if (kind === 'topk') {
        // circuit-tracer's CLT loader knows relu and jump_relu: the top-k keys are the transcoder set's (README).
        expect([r.config.activation, r.config.k, r.threshold]).toEqual(['topk', 3, false]);
      } else {
        expect([r.config.activation, r.threshold]).toEqual([undefined, true]);
        expect(r.acts).toBeLessThan(1e-5);
        expect(r.out).toBeLessThan(1e-5);
      }
    });
  }

  it('refuses a CLT that does not start at layer 0, and formats without CLTs, in one line', async () => {
    const clt = await CrossLayerTranscoder.create(16, ['layers.1.mlp', 'layers.2.mlp'], { k: 3, numLatents: 24 }, { seed: 1 });
    const dir = join(work, 'clt-late');
    await clt.saveToDisk(dir);
    await expect(exportRun(dir, 'circuit-tracer', join(work, 'clt-late-ct'))).rejects.toThrow("--format circuit-tracer: circuit-tracer's CLT has a source for every layer from 0; this one has layers layers.1.mlp, layers.2.mlp");
    await expect(exportRun(dir, 'saelens', join(work, 'clt-late-sl'))).rejects.toThrow(`--format saelens: ${dir} is a cross-layer transcoder, which this format does not hold (circuit-tracer does)`);
    expect(existsSync(join(work, 'clt-late-ct'))).toBe(false);
  });
});
