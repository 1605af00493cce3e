// evaluate(): every metric against a plain PyTorch restatement (test/helpers/reference_eval.py),
// and the fixed points of the spliced metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SparseCoder } from '../../src/coder/index.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { evaluate, EvalReportSchema, type EvalReport } from '../../src/eval/index.js';
import { loadModel } from '../../src/model/index.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { py } from '../helpers/python.js';

let work: string;
let neox: Fixture;
let llama: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-eval-'));
  neox = await tinyFixture(work, { rows: 24, ctxLen: 16, kind: 'causal_lm' });
  llama = await tinyFixture(work, { arch: 'llama', rows: 24, ctxLen: 16, kind: 'causal_lm' });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

/** A coder with nonzero biases and a decoder that is not the encoder's copy (so every term matters). */
async function coder(dIn: number, cfg: Parameters<typeof SparseCoder.create>[1], seed: number): Promise<SparseCoder> {
  const c = await SparseCoder.create(dIn, cfg, { seed });
  await py('g = torch.Generator().manual_seed(s)\nwith torch.no_grad():\n  for n, t in p.items():\n    if n != "encoder.weight": t.add_(torch.randn(t.shape, generator=g) * 0.05)', { p: c.params, s: seed });
  return c;
}

async function restated(fx: Fixture, coders: Map<string, [string, SparseCoder]>, options: { batchSize: number; exclude: number[]; splice: string; rows: [number, number] }): Promise<Record<string, unknown>> {
  const spec = Object.fromEntries([...coders].map(([name, [hp, c]]) => [name, [hp, c.params, c.cfg.k, c.cfg.activation, c.cfg.transcode]]));
  return py(
    `
import importlib.util
s = importlib.util.spec_from_file_location("reference_eval", helper); mod = importlib.util.module_from_spec(s); s.loader.exec_module(mod)
cs = {n: (hp, {k: v.detach() for k, v in p.items()}, k, act, tc) for n, (hp, p, k, act, tc) in spec.items()}
result = mod.evaluate(model, rows.rows(a, b), cs, batch_size=bs, exclude=exclude, splice=splice)`,
    { helper: new URL('../helpers/reference_eval.py', import.meta.url).pathname, model: fx.model.model, rows: fx.data.rows, a: options.rows[0], b: options.rows[1], spec, bs: options.batchSize, exclude: options.exclude, splice: options.splice },
  );
}

function close(got: number, want: number, what: string): void {
  if (!(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)))) expect.fail(`${what}: got ${got}, want ${want}`);
}

/**
 * The CE and KL values against the restatement; the two ratios from them by definition (on a
 * tiny random model zero-ablation barely moves the loss, so the ratios amplify rounding).
 */
function checkSplice(got: Record<string, number>, want: Record<string, number>, name: string): void {
  for (const m of ['ce_clean', 'ce_spliced', 'ce_zero', 'ce_delta', 'kl_spliced', 'kl_zero']) close(got[m]!, want[m]!, `${name} ${m}`);
  close(got.ce_loss_recovered!, (got.ce_zero! - got.ce_spliced!) / (got.ce_zero! - got.ce_clean!), `${name} ce_loss_recovered`);
  close(got.kl_score!, (got.kl_zero! - got.kl_spliced!) / got.kl_zero!, `${name} kl_score`);
}

function compare(report: EvalReport, want: Record<string, unknown>): void {
  for (const [name, got] of Object.entries(report.coders)) {
    const w = want[name] as Record<string, number> & { splice: Record<string, number> | null };
    for (const m of ['fvu', 'explained_variance', 'l0', 'dead_frac', 'dense_frac_1pct', 'dense_frac_10pct', 'tokens'] as const) close(got[m], w[m]!, `${name} ${m}`);
    expect(got.splice === null).toBe(w.splice === null);
    if (got.splice && w.splice) checkSplice(got.splice, w.splice, name);
  }
  const all = want.__all__ as Record<string, number> | null;
  expect(report.splice_all === null).toBe(all === null);
  if (report.splice_all && all) checkSplice(report.splice_all, all, 'all');
  expect(report.positions).toBe(want.__positions__);
}

describe('evaluate against a plain PyTorch restatement', () => {
  it('GPT-NeoX: SAEs (topk and groupmax) on two layers, --splice both, with excluded tokens', async () => {
    const coders = new Map<string, [string, SparseCoder]>([
      ['layers.0', ['layers.0', await coder(32, { k: 4, numLatents: 64 }, 1)]],
      ['layers.1', ['layers.1', await coder(32, { k: 4, numLatents: 64, activation: 'groupmax' }, 2)]],
    ]);
    const exclude = await py<number[]>('ids = rows.rows(4, 20).flatten()\nv, c = ids.unique(return_counts=True)\nresult = v[c.argsort(descending=True)[:3]].tolist()', { rows: neox.data.rows });
    const report = await evaluate(neox.model, [...coders].map(([name, [hookpoint, c]]) => ({ name, hookpoint, coder: c })), neox.data, { rows: [4, 20], batchSize: 5, splice: 'both', excludeTokens: exclude });
    expect(EvalReportSchema.parse(report)).toBeTruthy();
    expect(report.rows).toEqual({ start: 4, end: 20, of: 24 });
    expect(report.tokens).toBeLessThan(16 * 16); // excluded tokens left out
    compare(report, await restated(neox, coders, { batchSize: 5, exclude: report.excluded_token_ids, splice: 'both', rows: [4, 20] }));
  });

  it('Llama: a transcoder with a skip connection on an MLP and an SAE on a layer, --splice each and all', async () => {
    const coders = new Map<string, [string, SparseCoder]>([
      ['layers.0.mlp', ['layers.0.mlp', await coder(32, { k: 4, numLatents: 64, transcode: true, skipConnection: true }, 3)]],
      ['layers.1', ['layers.1', await coder(32, { k: 6, numLatents: 96 }, 4)]],
    ]);
    for (const splice of ['each', 'all'] as const) {
      const report = await evaluate(llama.model, [...coders].map(([name, [hookpoint, c]]) => ({ name, hookpoint, coder: c })), llama.data, { rows: [0, 12], batchSize: 4, splice });
      compare(report, await restated(llama, coders, { batchSize: 4, exclude: report.excluded_token_ids, splice, rows: [0, 12] }));
    }
  });
});

describe('fixed points', () => {
  it('a coder that reconstructs exactly gives ce_delta 0, ce_loss_recovered 1, kl 0; a zero coder recovers 0', async () => {
    // Encoder [I; -I] and decoder [I; -I] with k = D: relu picks |x_i| in one half, the decoder puts x back.
    const perfect = await SparseCoder.create(32, { k: 32, numLatents: 64 }, { seed: 0 });
    await py('with torch.no_grad():\n  I = torch.eye(32)\n  p["encoder.weight"].copy_(torch.cat([I, -I]))\n  p["W_dec"].copy_(torch.cat([I, -I]))\n  p["encoder.bias"].zero_(); p["b_dec"].zero_()', { p: perfect.params });
    const zero = await SparseCoder.create(32, { k: 4, numLatents: 64 }, { seed: 0 });
    await py('with torch.no_grad():\n  for t in p.values(): t.zero_()', { p: zero.params });
    const report = await evaluate(neox.model, [{ name: 'perfect', hookpoint: 'layers.0', coder: perfect }, { name: 'zero', hookpoint: 'layers.0', coder: zero }], neox.data, { rows: [0, 8], batchSize: 4 });
    const p = report.coders.perfect!;
    expect(p.fvu).toBeLessThan(1e-10);
    expect(p.explained_variance).toBeCloseTo(1, 9);
    expect(p.splice!.ce_delta).toBeCloseTo(0, 9);
    expect(p.splice!.ce_loss_recovered).toBeCloseTo(1, 9);
    expect(p.splice!.kl_spliced).toBeCloseTo(0, 9);
    expect(p.splice!.kl_score).toBeCloseTo(1, 9);
    const z = report.coders.zero!;
    expect(z.splice!.ce_loss_recovered).toBeCloseTo(0, 9);
    expect(z.splice!.kl_score).toBeCloseTo(0, 9);
    expect(z.dead_frac).toBe(1);
    expect(z.density_histogram.dead).toBe(64);
  });
});

describe('bad input', () => {
  it('a model without a language-model head: reconstruction metrics, and a warning for ce/kl', async () => {
    const base = await loadModel(neox.modelDir, { kind: 'base', device: 'cpu' });
    const report = await evaluate(base, new Map([['layers.0', await coder(32, { k: 4, numLatents: 64 }, 5)]]), neox.data, { rows: [0, 4], batchSize: 4 });
    expect(report.warnings).toEqual(['the model has no language-model head with loaded weights: ce and kl metrics left out (reconstruction metrics only)']);
    expect(report.coders['layers.0']!.splice).toBeNull();
    expect(report.coders['layers.0']!.fvu).toBeGreaterThan(0);
  });

  it('a coder whose width does not fit, a hookpoint the model lacks, no rows', async () => {
    const c = await coder(16, { k: 4, numLatents: 64 }, 6);
    await expect(evaluate(neox.model, new Map([['layers.0', c]]), neox.data, { rows: [0, 4] })).rejects.toThrow("coder layers.0 has d_in=16 but 'layers.0' of this model has width 32");
    await expect(evaluate(neox.model, new Map([['layers.9', c]]), neox.data)).rejects.toThrow("the model has no module 'layers.9' (a coder's hookpoint)");
    await expect(evaluate(neox.model, new Map([['layers.0', c]]), neox.data, { rows: [24, 24] })).rejects.toThrow('no rows to evaluate: rows 24..24 of a dataset of 24');
  });
});
