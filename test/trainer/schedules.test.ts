// Schedules are plain TypeScript: checked against the reference's formulas by value.
import { describe, expect, it } from 'vitest';
import { currentK, initialK } from '../../src/trainer/schedules.js';
import { linearWarmupDecay, optimizer } from '../../src/optimizers/index.js';
import { scheduleFreeStep } from '../../src/optimizers/signum.js';

const defaultLr = (name: 'signum' | 'adam' | 'muon', numLatents: number): number => optimizer(name).defaultLr(numLatents);
import { resolveHookpoints, type ModuleInfo } from '../../src/model/hookpoints.js';
import { trainConfig } from '../../src/config/train.js';

describe('learning rates', () => {
  it('default lr scales as 1/sqrt(M / 2^14)', () => {
    expect(defaultLr('signum', 2 ** 14)).toBe(5e-3);
    expect(defaultLr('signum', 2 ** 16)).toBeCloseTo(2.5e-3, 15);
    expect(defaultLr('adam', 2 ** 12)).toBeCloseTo(4e-4, 15);
    expect(defaultLr('muon', 123)).toBe(2e-3);
  });

  it('linear warmup then linear decay to 0 at the total (transformers get_linear_schedule_with_warmup)', () => {
    const values = [0, 1, 5, 10, 11, 55, 100, 120].map((s) => linearWarmupDecay(s, 10, 100));
    expect(values).toEqual([0, 0.1, 0.5, 1, 89 / 90, 45 / 90, 0, 0]);
    expect([0, 50, 100].map((s) => linearWarmupDecay(s, 0, 100))).toEqual([1, 0.5, 0]);
  });

  it('schedule-free weights: c = lr_max^2 / sum of lr_max^2 (1/(t+1) at constant lr)', () => {
    const state = { lrMax: -1, weightSum: 0, k: 0 };
    const cs = [1, 2, 3, 4].map(() => scheduleFreeStep(state, 0.01));
    expect(cs).toEqual([1, 0.5, 1 / 3, 0.25].map((c) => (0.01 ** 2) / ((0.01 ** 2) / c)));
    expect(state.k).toBe(4);
    // A larger lr later gets a larger share; a tiny lr is clamped at 1e-8.
    const s2 = { lrMax: -1, weightSum: 0, k: 0 };
    scheduleFreeStep(s2, 0);
    expect(s2.lrMax).toBe(1e-8);
  });
});

describe('k decay', () => {
  it('decays linearly from min(M, round(10 D)) to k over k_decay_steps batches', () => {
    const init = initialK(4096, 64);
    expect(init).toBe(640);
    expect([0, 25, 50, 100, 150].map((s) => currentK(s, 100, init, 32))).toEqual([640, Math.round(640 * 0.75 + 32 * 0.25), 336, 32, 32]);
    expect(initialK(256, 64)).toBe(256);
    expect(currentK(0, 0, 640, 32)).toBe(32);
  });
});

describe('hookpoint resolution', () => {
  const modules: ModuleInfo[] = [
    { name: 'wte', type: 'Embedding' },
    { name: 'h', type: 'ModuleList', length: 12 },
    ...Array.from({ length: 12 }, (_, i) => [
      { name: `h.${i}`, type: 'Block' },
      { name: `h.${i}.attn`, type: 'Attention' },
      { name: `h.${i}.mlp`, type: 'MLP' },
      { name: `h.${i}.mlp.act`, type: 'GELU' },
    ]).flat(),
    { name: 'ln_f', type: 'LayerNorm' },
  ];
  const req = (over: Partial<{ hookpoints: string[]; layers: number[]; layerStride: number }> = {}) => ({ hookpoints: [], layers: [], layerStride: 1, ...over });

  it('matches fnmatch patterns, naturally sorted', () => {
    expect(resolveHookpoints(modules, 12, req({ hookpoints: ['h.*.attn', 'h.*.mlp.act'] })).slice(0, 5)).toEqual(['h.0.attn', 'h.0.mlp.act', 'h.1.attn', 'h.1.mlp.act', 'h.2.attn']);
    expect(resolveHookpoints(modules, 12, req({ hookpoints: ['h.[012].attn'] }))).toEqual(['h.0.attn', 'h.1.attn', 'h.2.attn']);
    expect(resolveHookpoints(modules, 12, req({ hookpoints: ['h.1?.mlp'] }))).toEqual(['h.10.mlp', 'h.11.mlp']);
  });

  it('finds the layer list and applies layers and layer_stride', () => {
    expect(resolveHookpoints(modules, 12, req())).toHaveLength(12);
    expect(resolveHookpoints(modules, 12, req({ layers: [10, 2] }))).toEqual(['h.10', 'h.2']);
    expect(resolveHookpoints(modules, 12, req({ layerStride: 4 }))).toEqual(['h.0', 'h.4', 'h.8']);
  });

  it('a pattern that matches nothing lists module names that exist', () => {
    expect(() => resolveHookpoints(modules, 12, req({ hookpoints: ['layers.*'] }))).toThrow(/hookpoint pattern 'layers\.\*' matches no module of the model; module names look like: wte, h, ln_f, h\.0/);
    expect(() => resolveHookpoints(modules, 12, req({ hookpoints: ['H.*.attn'] }))).toThrow(/matches no module/); // case-sensitive
    expect(() => resolveHookpoints(modules, 12, req({ layers: [12] }))).toThrow(/out of range/);
  });
});

describe('train config validation', () => {
  it('applies the reference rules', () => {
    expect(() => trainConfig({ layers: [1], layerStride: 2 })).toThrow('train config: layers: give layers or layer_stride, not both');
    expect(() => trainConfig({ layers: [1], hookpoints: ['h.*'] })).toThrow(/give hookpoints or layers, not both/);
    expect(() => trainConfig({ distributeModules: true, lossFn: 'ce' })).toThrow(/distribute_modules works only with loss_fn fvu \(got ce\)/);
    expect(() => trainConfig({ initSeeds: [] })).toThrow(/init_seeds: give at least one seed/);
    expect(() => trainConfig({ optimizer: 'sgd' as 'adam' })).toThrow(/optimizer: invalid value "sgd" \(allowed: signum, adam, muon\)/);
    const cfg = trainConfig({});
    expect(cfg.sae.k).toBe(32);
    expect(cfg.batchSize).toBe(32);
    expect(cfg.deadFeatureThreshold).toBe(10_000_000);
    expect(cfg.saveDir).toBe('checkpoints');
  });
});
