// The Trainer end to end on tiny models (CPU): each feature asserts numbers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer, type StepReport } from '../../src/trainer/trainer.js';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { closeRuntime, getRuntime } from '../../src/bridge/index.js';
import type { TrainConfigInput } from '../../src/config/train.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { py } from '../helpers/python.js';
import { startHubServer } from '../helpers/hub-server.js';

let work: string;
let neox: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-train-'));
  neox = await tinyFixture(work, { rows: 256, ctxLen: 32 });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

let runCounter = 0;
async function train(fx: Fixture, cfg: TrainConfigInput, extra: { stopAt?: number; resume?: boolean; runName?: string } = {}): Promise<{ trainer: Trainer; reports: StepReport[] }> {
  const reports: StepReport[] = [];
  const runName = extra.runName ?? `run${runCounter++}`;
  const trainer = new Trainer({ logToWandb: false, saveDir: work, runName, ...cfg }, fx.data, fx.model, {
    log: () => undefined,
    onStep: (r) => {
      reports.push(r);
      if (extra.stopAt !== undefined && r.step >= extra.stopAt) trainer.requestStop();
    },
  });
  if (extra.resume) await trainer.loadState();
  await trainer.fit();
  return { trainer, reports };
}

const meanFvu = (r: StepReport): number => {
  const v = Object.values(r.metrics).map((m) => m.fvu!).filter((x) => x !== undefined);
  return v.reduce((a, b) => a + b, 0) / v.length;
};

describe('fvu training', () => {
  for (const optimizer of ['signum', 'adam', 'muon'] as const) {
    it(`fvu falls over 30 steps: ${optimizer}`, async () => {
      const { reports, trainer } = await train(neox, { sae: { k: 8, expansionFactor: 4 }, batchSize: 8, optimizer, lrWarmupSteps: 5, ...(optimizer === 'adam' ? { lr: 3e-3 } : optimizer === 'muon' ? { lr: 1e-2 } : {}) });
      expect(reports).toHaveLength(32); // 256 rows in batches of 8
      expect(trainer.hookpoints).toEqual(['layers.0', 'layers.1']);
      const first = meanFvu(reports[0]!);
      const last = (meanFvu(reports[29]!) + meanFvu(reports[30]!) + meanFvu(reports[31]!)) / 3;
      expect(first).toBeGreaterThan(0.2);
      expect(last).toBeLessThan(first * 0.6);
    });
  }

  it('writes the reference layout: a coder directory per hookpoint, config, state, metrics (and checkpoint.json, the marker of a complete checkpoint)', async () => {
    const { trainer } = await train(neox, { sae: { k: 4, expansionFactor: 2 }, batchSize: 16, saveEvery: 5, runName: 'layout' });
    const dir = trainer.runDir;
    expect(readdirSync(dir).sort()).toEqual(['checkpoint.json', 'config.json', 'layers.0', 'layers.1', 'metrics.jsonl', 'state.json', 'state.safetensors']);
    const coders = await SparseCoder.loadMany(dir);
    expect([...coders.keys()]).toEqual(['layers.0', 'layers.1']);
    expect(coders.get('layers.0')!.numLatents).toBe(64);
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(lines).toHaveLength(16);
    expect(lines[0]).toHaveProperty('fvu/layers.0');
    expect(lines[0]).toHaveProperty('dead_pct/layers.1');
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toMatchObject({ batch_size: 16, sae: { k: 4, expansion_factor: 2 } });
  });

  it('makes at most 2 bridge round trips per optimizer step in steady state', async () => {
    const rt = await getRuntime();
    let callsAtStep5 = 0;
    let callsAtEnd = 0;
    const trainer = new Trainer({ sae: { k: 4, expansionFactor: 2 }, batchSize: 8, saveEvery: 1000, logToWandb: false, saveDir: work, runName: 'calls' }, neox.data, neox.model, {
      log: () => undefined,
      onStep: (r) => {
        if (r.step === 5) callsAtStep5 = rt.calls;
        if (r.step === 25) callsAtEnd = rt.calls;
      },
    });
    await trainer.fit();
    expect(callsAtEnd - callsAtStep5).toBeLessThanOrEqual(2 * 20);
    expect(callsAtEnd - callsAtStep5).toBe(20); // one hooks.run per optimizer step
  });

  it('k decays linearly per batch from min(M, 10 D) to k, one batch behind as in the reference', async () => {
    const { reports } = await train(neox, { sae: { k: 4, expansionFactor: 2 }, batchSize: 16, kDecaySteps: 8 });
    // M = 64 < 10 * 32, so k starts at 64. The report after batch s gives the k of batch s + 1,
    // which the reference computes from the batch counter before it counts batch s: k(s - 1)
    // for s >= 1 (so batches 0 and 1 both use k(0)), rounded half to even as Python does.
    expect(reports.slice(0, 10).map((r) => r.k)).toEqual([64, 56, 49, 42, 34, 26, 19, 12, 4, 4]);
  });

  it('transcoders, skip connection, groupmax, multi-topk, several seeds and gradient accumulation train on Llama', async () => {
    const llama = await tinyFixture(work, { arch: 'llama', rows: 128, ctxLen: 32 });
    const { reports, trainer } = await train(llama, {
      sae: { k: 4, expansionFactor: 4, transcode: true, skipConnection: true, activation: 'groupmax', multiTopk: true },
      hookpoints: ['layers.*.mlp'],
      initSeeds: [0, 1],
      batchSize: 4,
      optimizer: 'adam',
      lr: 2e-4, // a random tiny model's MLP outputs are small: big steps overshoot
      lrWarmupSteps: 2,
      gradAccSteps: 2,
      microAccSteps: 2,
      auxkAlpha: 1 / 32,
      deadFeatureThreshold: 64,
    });
    expect(trainer.slots.map((s) => s.name)).toEqual(['layers.0.mlp/seed0', 'layers.0.mlp/seed1', 'layers.1.mlp/seed0', 'layers.1.mlp/seed1']);
    expect(reports).toHaveLength(16); // 32 batches, 2 per optimizer step
    const first = reports[0]!.metrics['layers.0.mlp/seed0']!;
    const last = reports[15]!.metrics['layers.0.mlp/seed0']!;
    expect(last.fvu).toBeLessThan(first.fvu!);
    expect(first.multi_topk_fvu).toBeGreaterThan(0);
    const coders = await SparseCoder.loadMany(join(trainer.runDir, 'layers.0.mlp'));
    expect([...coders.keys()]).toEqual(['seed0', 'seed1']);
    expect(coders.get('seed0')!.cfg.transcode).toBe(true);
  });

  it('GPT-2 hookpoints h.*.attn and h.*.mlp.act train, widths from a dummy forward', async () => {
    const gpt2 = await tinyFixture(work, { arch: 'gpt2', rows: 64, ctxLen: 32 });
    const { trainer } = await train(gpt2, { sae: { k: 4, expansionFactor: 2 }, hookpoints: ['h.*.attn', 'h.*.mlp.act'], batchSize: 16 });
    expect(trainer.hookpoints).toEqual(['h.0.attn', 'h.0.mlp.act', 'h.1.attn', 'h.1.mlp.act']);
    expect(trainer.slots.map((s) => s.coder.dIn)).toEqual([32, 128, 32, 128]);
  });
});

describe('resume', () => {
  for (const optimizer of ['signum', 'adam'] as const) {
    it(`resuming after N steps reproduces the uninterrupted run's weights exactly: ${optimizer}`, async () => {
      const cfg: TrainConfigInput = { sae: { k: 4, expansionFactor: 2 }, batchSize: 8, optimizer, saveEvery: 7, lrWarmupSteps: 3, auxkAlpha: 0.1, deadFeatureThreshold: 200 };
      const full = await train(neox, { ...cfg, runName: `full-${optimizer}` }, {});
      await train(neox, { ...cfg, runName: `part-${optimizer}` }, { stopAt: 12 });
      const resumed = await train(neox, { ...cfg, runName: `part-${optimizer}` }, { resume: true });
      expect(resumed.reports[0]!.step).toBe(13);
      expect(resumed.trainer.globalStep).toBe(full.trainer.globalStep);
      const same = await py<boolean[]>(
        'from safetensors.torch import load_file\nresult = []\nfor n in names:\n  a = load_file(f"{full}/{n}/sae.safetensors"); b = load_file(f"{part}/{n}/sae.safetensors")\n  result.append(all(torch.equal(a[k], b[k]) for k in a))\nsa = load_file(f"{full}/state.safetensors"); sb = load_file(f"{part}/state.safetensors")\nresult.append(sorted(sa) == sorted(sb) and all(torch.equal(sa[k], sb[k]) for k in sa))',
        { full: full.trainer.runDir, part: resumed.trainer.runDir, names: ['layers.0', 'layers.1'] },
      );
      expect(same).toEqual([true, true, true]);
    });
  }

  it('refuses a checkpoint of a different run shape', async () => {
    await train(neox, { sae: { k: 4, expansionFactor: 2 }, batchSize: 8, runName: 'shape' }, { stopAt: 2 });
    await expect(train(neox, { sae: { k: 4, expansionFactor: 2 }, batchSize: 4, runName: 'shape' }, { resume: true })).rejects.toThrow(/batch_size 8, this run 4/);
    await expect(train(neox, { sae: { k: 4, expansionFactor: 2 }, batchSize: 8, runName: 'nothing-here' }, { resume: true })).rejects.toThrow(/no checkpoint/);
  });
});

describe('end-to-end losses', () => {
  for (const lossFn of ['ce', 'kl'] as const) {
    it(`${lossFn} training lowers the patched loss`, async () => {
      const lm = await tinyFixture(work, { kind: 'causal_lm', rows: 256, ctxLen: 32 });
      const { reports } = await train(lm, { sae: { k: 4, expansionFactor: 4 }, lossFn, batchSize: 8, layers: [1], optimizer: 'adam', lr: 5e-3, lrWarmupSteps: 2 });
      const loss = (r: StepReport): number => r.metrics[lossFn]![lossFn]!;
      const first = loss(reports[0]!);
      const last = (loss(reports[29]!) + loss(reports[30]!) + loss(reports[31]!)) / 3;
      expect(last).toBeLessThan(first);
    });
  }
});

describe('end-to-end transcoders', () => {
  it('ce training of transcoders replaces their modules (the module does not run) and lowers the loss', async () => {
    const lm = await tinyFixture(work, { arch: 'llama', kind: 'causal_lm', rows: 256, ctxLen: 32 });
    const { reports } = await train(lm, { sae: { k: 4, expansionFactor: 4, transcode: true }, lossFn: 'ce', hookpoints: ['layers.1.mlp'], batchSize: 8, optimizer: 'adam', lr: 3e-3, lrWarmupSteps: 2 });
    const loss = (r: StepReport): number => r.metrics.ce!.ce!;
    expect((loss(reports[29]!) + loss(reports[30]!) + loss(reports[31]!)) / 3).toBeLessThan(loss(reports[0]!));
    // With the module replaced by identity, the hook sees its input as its output.
    expect(reports[0]!.metrics['layers.1.mlp']!.fvu).toBeGreaterThan(0);
  });
});

describe('best checkpoints and fine-tuning', () => {
  it('save_best keeps the best coders under best/', async () => {
    const { trainer } = await train(neox, { sae: { k: 4, expansionFactor: 2 }, batchSize: 16, saveEvery: 4, saveBest: true, runName: 'best' });
    expect(existsSync(join(trainer.runDir, 'best', 'layers.0', 'sae.safetensors'))).toBe(true);
    const best = await SparseCoder.loadMany(join(trainer.runDir, 'best'));
    expect([...best.keys()]).toEqual(['layers.0', 'layers.1']);
    expect(trainer.slots.every((s) => Number.isFinite(s.bestLoss))).toBe(true);
  });

  it('finetune starts from saved coders and skips the first-batch bias init', async () => {
    const base = await train(neox, { sae: { k: 4, expansionFactor: 2 }, batchSize: 16, runName: 'ft-base' });
    const trainer = new Trainer({ sae: { k: 4, expansionFactor: 2 }, batchSize: 16, finetune: base.trainer.runDir, logToWandb: false, saveDir: work, runName: 'ft' }, neox.data, neox.model, { log: () => undefined });
    await trainer.init();
    const same = await py<boolean>('from safetensors.torch import load_file\nw = load_file(path)\nresult = all(torch.equal(w[k], p[k].detach()) for k in w)', {
      path: join(base.trainer.runDir, 'layers.0', 'sae.safetensors'),
      p: trainer.slots[0]!.coder.params,
    });
    expect(same).toBe(true);
  });

  it('finetune from a bfloat16 checkpoint trains float32 master weights (as the reference), the checkpoint copied in', async () => {
    const dir = join(work, 'bf16-coders', 'layers.0');
    const bf16 = await SparseCoder.create(32, { k: 4, expansionFactor: 2 }, { seed: 5, dtype: 'bfloat16' });
    await bf16.saveToDisk(dir);
    const trainer = new Trainer({ sae: { k: 4, expansionFactor: 2 }, batchSize: 16, hookpoints: ['layers.0'], finetune: join(work, 'bf16-coders'), logToWandb: false, saveDir: work, runName: 'ft-bf16' }, neox.data, neox.model, { log: () => undefined });
    await trainer.init();
    const got = await py<{ dtypes: string[]; same: boolean }>('from safetensors.torch import load_file\nw = load_file(path)\nresult = {"dtypes": sorted({str(t.dtype) for t in p.values()}), "same": all(torch.equal(w[k].float(), p[k].detach()) for k in w)}', {
      path: join(dir, 'sae.safetensors'),
      p: trainer.slots[0]!.coder.params,
    });
    expect(got).toEqual({ dtypes: ['torch.float32'], same: true });
    await trainer.fit();
    // A checkpoint of another width is a clear error.
    const wide = new Trainer({ sae: { k: 4, expansionFactor: 4 }, batchSize: 16, hookpoints: ['layers.0'], finetune: join(work, 'bf16-coders'), logToWandb: false, saveDir: work, runName: 'ft-wide' }, neox.data, neox.model, { log: () => undefined });
    await expect(wide.init()).rejects.toThrow(/finetune: .*layers.0 has 64 latents, this run's configuration 128; give the same --num_latents\/--expansion_factor and --skip_connection/);
  });

  it('finetune also takes a Hub repo of coders', async () => {
    const base = await train(neox, { sae: { k: 4, expansionFactor: 2 }, batchSize: 16, runName: 'ft-hub-base' });
    const files: Record<string, Buffer> = {};
    for (const h of ['layers.0', 'layers.1']) for (const f of ['cfg.json', 'sae.safetensors']) files[`${h}/${f}`] = readFileSync(join(base.trainer.runDir, h, f));
    const server = await startHubServer({ 'org/ft': { files } });
    const saved = { endpoint: process.env.HF_ENDPOINT, cache: process.env.HF_HUB_CACHE };
    process.env.HF_ENDPOINT = server.url;
    process.env.HF_HUB_CACHE = join(work, 'hub-cache');
    try {
      const trainer = new Trainer({ sae: { k: 4, expansionFactor: 2 }, batchSize: 16, finetune: 'org/ft', logToWandb: false, saveDir: work, runName: 'ft-hub' }, neox.data, neox.model, { log: () => undefined });
      await trainer.init();
      const same = await py<boolean>('from safetensors.torch import load_file\nw = load_file(path)\nresult = all(torch.equal(w[k], p[k].detach()) for k in w)', {
        path: join(base.trainer.runDir, 'layers.1', 'sae.safetensors'),
        p: trainer.slots[1]!.coder.params,
      });
      expect(same).toBe(true);
    } finally {
      await server.close();
      for (const [k, v] of [['HF_ENDPOINT', saved.endpoint], ['HF_HUB_CACHE', saved.cache]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
