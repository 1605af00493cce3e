// CLI parsing: the reference's flag spellings, defaults in --help, one-line errors.
import { describe, expect, it } from 'vitest';
import { buildCommand, parseArgs, BUNDLED } from '../../src/cli/main.js';
import { SparseCoderConfigSchema } from '../../src/config/sparse-coder.js';
import { RunOptionsSchema, TrainConfigObject, parseDataArgs } from '../../src/config/train.js';
import { snakeCase } from '../../src/util/case.js';
import { ACTIVATION_NAMES } from '../../src/activations/index.js';

describe('flags', () => {
  it('--help lists every option with its default and doc', () => {
    const help = buildCommand().helpInformation();
    const keys = [...Object.keys(SparseCoderConfigSchema.shape), ...Object.keys(TrainConfigObject.shape).filter((k) => k !== 'sae'), ...Object.keys(RunOptionsSchema.shape).filter((k) => k !== 'model' && k !== 'dataset')];
    for (const key of keys) expect(help).toContain(`--${snakeCase(key)}`);
    expect(help).toMatch(/--batch_size <n>\s+Batch size measured in sequences \(default:\s+32\)/);
    expect(help).toMatch(/-k, --k <n>/);
    expect(help).toMatch(/--optimizer <choice>\s+Optimizer \(choices: "signum", "adam",\s+"muon", default: "signum"\)/);
  });

  it('--resume is a boolean that also takes auto (one line for anything else)', () => {
    expect(parseArgs(['gpt2', '--resume']).run.resume).toBe(true);
    expect(parseArgs(['gpt2', '--resume', 'auto']).run.resume).toBe('auto');
    expect(parseArgs(['gpt2', '--resume', 'false']).run.resume).toBe(false);
    expect(parseArgs(['gpt2']).run.resume).toBe(false);
    expect(buildCommand().helpInformation()).toMatch(/--resume \[bool\|auto\]/);
  });

  it('parses the reference spellings: lists after one flag, -k, booleans three ways', () => {
    const a = parseArgs(['gpt2', 'my/data', '--hookpoints', 'h.*.attn', 'h.*.mlp.act', '-k', '64', '--transcode', '--batch_size', '8', '--save_best', 'true', '--nonormalize_decoder', '--init_seeds', '1', '2']);
    expect(a.run.model).toBe('gpt2');
    expect(a.run.dataset).toBe('my/data');
    expect(a.train.hookpoints).toEqual(['h.*.attn', 'h.*.mlp.act']);
    expect(a.train.sae.k).toBe(64);
    expect(a.train.sae.transcode).toBe(true);
    expect(a.train.sae.normalizeDecoder).toBe(false);
    expect(a.train.saveBest).toBe(true);
    expect(a.train.batchSize).toBe(8);
    expect(a.train.initSeeds).toEqual([1, 2]);
    const b = parseArgs(['gpt2', '--layers', '0', '2', '--save_best', 'false', '--dead_feature_threshold', '1_000']);
    expect(b.train.layers).toEqual([0, 2]);
    expect(b.train.saveBest).toBe(false);
    expect(b.train.deadFeatureThreshold).toBe(1000);
    expect(b.run.dataset).toBe('EleutherAI/SmolLM2-135M-10B'); // the reference default
    expect(b.bundled).toBe(false);
  });

  it('with no model, uses the bundled model and text with small-run defaults, unless overridden', () => {
    const a = parseArgs([]);
    expect(a.bundled).toBe(true);
    expect(a.run.model).toBe(BUNDLED.model);
    expect(a.run.dataset).toBe(BUNDLED.dataset);
    expect(a.run.ctxLen).toBe(128);
    expect(a.train.batchSize).toBe(16);
    expect(parseArgs(['--batch_size', '4']).train.batchSize).toBe(4);
  });

  it('bad values are one-line errors naming the value and what is allowed', () => {
    expect(() => parseArgs(['gpt2', '--layers', '1', '--layer_stride', '2'])).toThrow('sparsify: --layers: give layers or layer_stride, not both');
    expect(() => parseArgs(['gpt2', '--batch_size', '0'])).toThrow('sparsify: --batch_size must be more than 0 (got 0)');
    expect(() => parseArgs(['gpt2', '--batch_size', 'abc'])).toThrow(/--batch_size takes a number, not "abc"/);
    expect(() => parseArgs(['gpt2', '--activation', 'relu'])).toThrow(`argument 'relu' is invalid. Allowed choices are ${ACTIVATION_NAMES.join(', ')}.`);
    expect(() => parseArgs(['gpt2', '--save_best', 'maybe'])).toThrow(/--save_best takes true or false, not "maybe"/);
    expect(() => parseArgs(['gpt2', '--no_such_flag'])).toThrow(/unknown option '--no_such_flag'/);
  });

  it('data_args turns "k=v" pairs into typed values', () => {
    expect(parseDataArgs('name=wikitext-2-raw-v1,streaming=false,n=3,x=0.5')).toEqual({ name: 'wikitext-2-raw-v1', streaming: false, n: 3, x: 0.5 });
    expect(() => parseDataArgs('oops')).toThrow(/data_args: "oops" is not key=value/);
  });
});
