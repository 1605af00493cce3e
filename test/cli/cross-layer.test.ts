// `sparsify --transcode --cross_layer`: one cross-layer transcoder trained over the MLPs of a
// tiny model (its folder loads as a CrossLayerTranscoder whose forward gives the logged fvu
// falling), resumed from its checkpoint, and each unsupported combination refused in one line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { CrossLayerTranscoder } from '../../src/coder/index.js';
import { readLatentCache } from '../../src/explore/latent-cache.js';
import { pathToFileURL } from 'node:url';
import { runCli } from '../helpers/cli.js';
import { launchBrowser, openRoute, watchedPage } from '../helpers/browser.js';
import { makeTinyLM } from '../helpers/python.js';
import { CORPUS } from '../helpers/train-fixtures.js';

let work: string;
let modelDir: string;
const args = (): string[] => [modelDir, CORPUS, '--transcode', '--cross_layer', '--hookpoints', 'layers.*.mlp', '--ctx_len', '16', '--max_examples', '96', '--batch_size', '8', '-k', '4', '--expansion_factor', '2', '--lr', '0.002', '--save_dir', work, '--log_to_wandb', 'false'];
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-cli-clt-'));
  modelDir = await makeTinyLM(join(work, 'lm'), { layers: 3 });
  closeRuntime();
}, 120_000);
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

describe('sparsify --cross_layer', () => {
  it('trains one CLT over the MLPs, saves its folder, and resumes from it', async () => {
    const run = await runCli([...args(), '--run_name', 'clt', '--save_every', '6']);
    expect([run.code, run.err]).toEqual([0, expect.stringContaining('Training one cross-layer transcoder over 3 layers (layers.0.mlp, layers.1.mlp, layers.2.mlp): 6 decoders')]);
    const dir = join(work, 'clt');
    const clt = await CrossLayerTranscoder.load(dir);
    expect([clt.layers, clt.numLatents, clt.cfg.k]).toEqual([['layers.0.mlp', 'layers.1.mlp', 'layers.2.mlp'], 64, 4]);
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(lines.length).toBe(12);
    for (const layer of clt.layers) expect(lines.at(-1)![`fvu/${layer}`]!).toBeLessThan(lines[0]![`fvu/${layer}`]!);
    // The cross-layer decoders trained (they start at zero).
    const moved = await (await import('../helpers/python.js')).py<number>('result = float(p["W_dec"][:, 1:].detach().abs().max())', { p: clt.sources[0] });
    expect(moved).toBeGreaterThan(0);
    closeRuntime();
    const resumed = await runCli([...args(), '--run_name', 'clt', '--resume', '--max_examples', '144']);
    expect([resumed.code, resumed.err]).toEqual([0, expect.stringMatching(/Resumed from .* at step 12/)]);
    expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').length).toBe(18);
    expect(existsSync(join(dir, 'layers.2.mlp', 'cfg.json'))).toBe(false);
    // sparsify eval: each target, then the replacement model, on the rows it did not train on.
    const ev = await runCli(['eval', dir, '--max_tokens', '512']);
    expect([ev.code, ev.err]).toEqual([0, expect.stringContaining('Evaluating the cross-layer transcoder over layers.0.mlp, layers.1.mlp, layers.2.mlp on rows 144..')]);
    expect(ev.out).toMatch(/^layers\.2\.mlp +[\d.]+ +[\d.]+ +[\d.]+/m);
    expect(ev.out).toMatch(/^\(replacement model\) +[\d.]+ +-?[\d.]+ +[\d.]+$/m);
    const report = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')) as { cross_layer: boolean; targets: Record<string, unknown>; replacement: { ce_loss_recovered: number } };
    expect([report.cross_layer, Object.keys(report.targets), typeof report.replacement.ce_loss_recovered]).toEqual([true, clt.layers, 'number']);
    // sparsify explore: each source's latents, with its decoder norm per target layer.
    const site = join(work, 'site');
    const ex = await runCli(['explore', dir, '--out', site, '--max_tokens', '512']);
    expect([ex.code, ex.err]).toEqual([0, expect.stringContaining('Caching 3 coder(s)')]);
    const cache = await readLatentCache(join(dir, 'explore'));
    expect(Object.entries(cache.index.coders).map(([name, c]) => [name, c.targets])).toEqual([
      ['layers.0.mlp', clt.layers],
      ['layers.1.mlp', clt.layers.slice(1)],
      ['layers.2.mlp', clt.layers.slice(2)],
    ]);
    const { py } = await import('../helpers/python.js');
    const trained = await CrossLayerTranscoder.load(dir); // the CLI closed the runtime that held clt's tensors
    const record = cache.latent('layers.1.mlp', 5);
    const norms = await py<number[]>('result = p["W_dec"][5].float().norm(dim=-1).tolist()', { p: trained.sources[1] });
    expect(record.decoderNorms!.map((d) => d.target)).toEqual(['layers.1.mlp', 'layers.2.mlp']);
    record.decoderNorms!.forEach((d, i) => expect(d.norm).toBeCloseTo(norms[i]!, 6));
    // Its logit effects: the decoder rows summed over the targets, times the unembedding.
    const effects = await py<number[]>(
      'from transformers import AutoModelForCausalLM\nw_u = AutoModelForCausalLM.from_pretrained(model).get_output_embeddings().weight.float()\nresult = (p["W_dec"][5].float().sum(0) @ w_u.T).topk(3).indices.tolist()',
      { p: trained.sources[1], model: modelDir },
    );
    expect(record.logits!.top.slice(0, 3).map((t) => t.token)).toEqual(effects);
    // The static site's latent files carry the norms; a per-layer coder's do not.
    const chunk = readFileSync(join(site, 'data', 'coders', '2', 'latents', '0.js'), 'utf8');
    const payload = JSON.parse(chunk.slice(chunk.indexOf(', ') + 2, chunk.lastIndexOf(');'))) as { decoder_norms: { targets: string[]; norms: number[][] } };
    expect([payload.decoder_norms.targets, payload.decoder_norms.norms.length, payload.decoder_norms.norms[0]!.length]).toEqual([['layers.2.mlp'], 32, 1]);
    cache.close();
    // In Chromium: the static latent page shows the norms beside the logit effects.
    const browser = await launchBrowser();
    try {
      const { page, errors } = await watchedPage(browser);
      await openRoute(page, `${pathToFileURL(join(site, 'index.html')).href}#/c/layers.1.mlp/l/5`);
      const rows = await page.locator('#decoder-norms tr').evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-target'), tr.querySelector('td.n')?.textContent]));
      expect(rows.map(([t]) => t)).toEqual(['layers.1.mlp', 'layers.2.mlp']);
      expect(Number(rows[0]![1])).toBeCloseTo(norms[0]!, 2);
      expect(await page.locator('#steer-mode option').count()).toBe(0); // a static export has no steering panel
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
    const ex2 = await runCli(['export', dir, '--format', 'saelens', '--out', join(work, 'sl')]);
    expect(ex2.err).toContain('is a cross-layer transcoder, which this format does not hold (circuit-tracer does)');
  }, 300_000);

  it('trains a jumprelu CLT towards a target L0 (each source its own L0 loss)', async () => {
    const jr = args().filter((a, i, all) => a !== '-k' && all[i - 1] !== '-k');
    const run = await runCli([...jr, '--activation', 'jumprelu', '--target_l0', '8', '--run_name', 'jr']);
    expect(run.code).toBe(0);
    const lines = readFileSync(join(work, 'jr', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    for (const layer of ['layers.0.mlp', 'layers.1.mlp', 'layers.2.mlp']) {
      expect(lines.at(-1)![`l0/${layer}`]).toEqual(expect.any(Number));
      expect(lines.at(-1)![`sparsity_loss/${layer}`]).toEqual(expect.any(Number));
    }
    expect((await CrossLayerTranscoder.load(join(work, 'jr'))).cfg.activation).toBe('jumprelu');
  }, 120_000);

  it('sweeps CLTs (one per configuration, each as if trained alone), evaluates them every few steps, and finetunes one', async () => {
    const noK = args().filter((a, i, all) => a !== '-k' && all[i - 1] !== '-k');
    const sweep = await runCli([...noK, '--sweep', 'k=2,4', '--eval_every', '6', '--eval_tokens', '256', '--run_name', 'sw']);
    expect([sweep.code, sweep.err]).toEqual([0, expect.stringContaining('6 decoders in 2 configurations (k2, k4), one CLT each')]);
    const alone = await runCli([...noK, '-k', '4', '--run_name', 'k4']);
    expect(alone.code).toBe(0);
    const [swept, single] = [await CrossLayerTranscoder.load(join(work, 'sw', 'k4')), await CrossLayerTranscoder.load(join(work, 'k4'))];
    expect([(await CrossLayerTranscoder.load(join(work, 'sw', 'k2'))).cfg.k, swept.cfg.k]).toEqual([2, 4]);
    // The sweep's k4 CLT, trained beside k2 and evaluated twice, equals k4 trained alone: bit for bit.
    const { py } = await import('../helpers/python.js');
    for (const i of [0, 1, 2]) expect(await py<boolean>('result = all(torch.equal(a[n], b[n]) for n in a)', { a: swept.sources[i], b: single.sources[i] })).toBe(true);
    const lines = readFileSync(join(work, 'sw', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(lines.length).toBe(12);
    for (const at of ['k2', 'k4']) {
      expect(lines[11]![`fvu/${at}/layers.1.mlp`]).toEqual(expect.any(Number));
      // --eval_every 6: each target's held-out metrics and the replacement model's, at steps 6 and 12.
      for (const step of [5, 11]) {
        expect(lines[step]![`eval/fvu/${at}/layers.2.mlp`]).toEqual(expect.any(Number));
        expect(lines[step]![`eval/ce_loss_recovered/${at}/all`]).toEqual(expect.any(Number));
      }
      expect(lines[4]![`eval/fvu/${at}/layers.2.mlp`]).toBeUndefined();
    }
    // A sweep's root holds several CLTs: eval says to give one.
    const ev = await runCli(['eval', join(work, 'sw'), '--max_tokens', '256']);
    expect([ev.code, ev.err.trim()]).toEqual([1, `sparsify eval: ${join(work, 'sw')} holds 2 cross-layer transcoders (k2, k4, a sweep's): give one's folder, as ${join(work, 'sw', 'k2')}`]);
    // Finetune: start from the swept k4 CLT; its first step starts where that run ended.
    const ft = await runCli([...noK, '-k', '4', '--finetune', join(work, 'sw', 'k4'), '--run_name', 'ft', '--max_examples', '16']);
    expect([ft.code, ft.code ? ft.err : '']).toEqual([0, '']);
    const first = JSON.parse(readFileSync(join(work, 'ft', 'metrics.jsonl'), 'utf8').split('\n')[0]!) as Record<string, number>;
    for (const layer of swept.layers) expect(first[`fvu/${layer}`]!).toBeLessThan(lines[0]![`fvu/k4/${layer}`]! * 0.8);
    // A per-layer run, or other layers, are refused in one line.
    const perLayer = await runCli([...noK.filter((a) => a !== '--cross_layer'), '-k', '4', '--run_name', 'tc', '--max_examples', '16']);
    expect(perLayer.code).toBe(0);
    const bad = await runCli([...noK, '-k', '4', '--finetune', join(work, 'tc'), '--run_name', 'ft2']);
    expect([bad.code, bad.err.trim().split('\n').pop()]).toEqual([1, `sparsify: finetune: ${join(work, 'tc')} is not a cross-layer transcoder's folder (no cfg.json saying cross_layer; it holds per-layer coders); give the folder of a CLT run`]);
  }, 400_000);

  it('refuses what it does not support, in one line each', async () => {
    const err = async (...extra: string[]): Promise<string> => (await runCli([...args(), '--run_name', 'bad', ...extra])).err.trim().split('\n').pop()!;
    const base = args();
    expect((await runCli([...base.filter((a) => a !== '--transcode'), '--run_name', 'bad'])).err.trim()).toBe('sparsify: --cross_layer: a cross-layer transcoder is a transcoder: give --transcode');
    expect(await err('--loss_fn', 'ce')).toBe("sparsify: --cross_layer: trains with loss_fn fvu only (got ce): its loss is the sum of every target's fvu");
    expect(await err('--optimizer', 'muon')).toBe('sparsify: --cross_layer: not with muon: its decoders are [latents, targets, width], not matrices');
    expect(await err('--sweep', 'optimizer=adam,muon')).toBe('sparsify: --cross_layer: not with muon: its decoders are [latents, targets, width], not matrices (configuration opt-muon)');
    expect(await err('--init_seeds', '0', '1')).toBe('sparsify: --cross_layer: one seed: a cross-layer transcoder spans the hookpoints, one per run (or per configuration of a sweep)');
    const at = base.indexOf('layers.*.mlp');
    const gap = await runCli([...base.slice(0, at), 'layers.0.mlp', 'layers.2.mlp', ...base.slice(at + 1), '--run_name', 'gap']);
    expect([gap.code, gap.err.trim().split('\n').pop()]).toEqual([1, 'sparsify: cross_layer: the layers must be a contiguous run (got 0, 2)']);
  }, 120_000);
});
