// Coder directories: the documented layout, bit-exact round trips, and clear errors on bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, truncateSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SparseCoder, Sae } from '../../src/coder/sparse-coder.js';
import { CoderFileError } from '../../src/coder/files.js';
import { ConfigError } from '../../src/config/errors.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { py, randn } from '../helpers/python.js';
import { ACTIVATION_NAMES } from '../../src/activations/index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sparsify-files-'));
});
afterAll(() => {
  closeRuntime();
  rmSync(dir, { recursive: true, force: true });
});

/** Write a coder directory the way the reference library does, with plain Python safetensors. */
async function writeWithPython(path: string, cfg: Record<string, unknown>, shapes: Record<string, number[]>, dtype = 'float32'): Promise<void> {
  await py(
    `import os, json
from safetensors.torch import save_file
os.makedirs(path, exist_ok=True)
g = torch.Generator().manual_seed(0)
save_file({k: torch.randn(*s, generator=g).to(getattr(torch, dtype)) for k, s in shapes.items()}, os.path.join(path, "sae.safetensors"))
with open(os.path.join(path, "cfg.json"), "w") as f: json.dump(cfg, f)`,
    { path, cfg, shapes, dtype },
  );
}

const refCfg = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  activation: 'topk',
  expansion_factor: 32,
  normalize_decoder: true,
  num_latents: 0,
  k: 4,
  multi_topk: false,
  skip_connection: false,
  transcode: false,
  d_in: 8,
  ...extra,
});

describe('save and load', () => {
  it('writes exactly cfg.json + sae.safetensors, and the round trip is bit-exact', async () => {
    const coder = await SparseCoder.create(24, { k: 6, expansionFactor: 4, skipConnection: true }, { seed: 5 });
    await py('with torch.no_grad():\n  for t in p.values(): t.add_(torch.randn(t.shape) * 0.01)', { p: coder.params });
    const path = join(dir, 'roundtrip', 'layers.3');
    await coder.saveToDisk(path);
    expect(readdirSync(path).sort()).toEqual(['cfg.json', 'sae.safetensors']);
    expect(JSON.parse(readFileSync(join(path, 'cfg.json'), 'utf8'))).toEqual({
      activation: 'topk',
      expansion_factor: 4,
      normalize_decoder: true,
      num_latents: 0,
      k: 6,
      multi_topk: false,
      skip_connection: true,
      transcode: false,
      d_in: 24,
    });
    // The file holds exactly the documented tensors, read by plain safetensors.
    const names = await py<Record<string, number[]>>(
      'from safetensors import safe_open\nwith safe_open(path, "pt") as f: result = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}',
      { path: join(path, 'sae.safetensors') },
    );
    expect(names).toEqual({ 'encoder.weight': [96, 24], 'encoder.bias': [96], W_dec: [96, 24], b_dec: [24], W_skip: [24, 24] });
    const back = await SparseCoder.loadFromDisk(path);
    expect(back.cfg).toEqual(coder.cfg);
    expect(back.dIn).toBe(24);
    const same = await py<boolean>('result = sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)', { a: coder.params, b: back.params });
    expect(same).toBe(true);
  });

  it('loads a directory written by plain Python in the documented layout, in the file dtype', async () => {
    const path = join(dir, 'python-written');
    await writeWithPython(path, { ...refCfg({ num_latents: 32, some_future_field: 'ignored' }) }, { 'encoder.weight': [32, 8], 'encoder.bias': [32], W_dec: [32, 8], b_dec: [8] }, 'bfloat16');
    const coder = await Sae.loadFromDisk(path);
    expect(coder.numLatents).toBe(32);
    expect(coder.dtype).toBe('bfloat16');
    const x = await randn([5, 8], 1);
    const enc = await coder.encode(await py('result = x.bfloat16()', { x }));
    expect(enc.topActs.shape).toEqual([5, 4]);
  });

  it('decoder: false loads the encoder only', async () => {
    const path = join(dir, 'encoder-only');
    await writeWithPython(path, refCfg({ num_latents: 16 }), { 'encoder.weight': [16, 8], 'encoder.bias': [16], W_dec: [16, 8], b_dec: [8] });
    const coder = await SparseCoder.loadFromDisk(path, { decoder: false });
    expect(coder.hasDecoder).toBe(false);
    const names = await py<string[]>('result = sorted(p)', { p: coder.params });
    expect(names).toEqual(['b_dec', 'encoder.bias', 'encoder.weight']);
    const x = await randn([3, 8], 2);
    const enc = await coder.encode(x);
    await expect(coder.decode(enc.topActs, enc.topIndices)).rejects.toThrow(/decoder: false/);
  });
});

describe('bad input is a clear error naming the file or value', () => {
  it('missing cfg.json', async () => {
    const path = join(dir, 'no-cfg');
    mkdirSync(path, { recursive: true });
    await expect(SparseCoder.loadFromDisk(path)).rejects.toThrow(new CoderFileError(`${join(path, 'cfg.json')}: not found (a coder directory holds cfg.json and sae.safetensors)`));
  });

  it('truncated sae.safetensors', async () => {
    const path = join(dir, 'truncated');
    await writeWithPython(path, refCfg({ num_latents: 16 }), { 'encoder.weight': [16, 8], 'encoder.bias': [16], W_dec: [16, 8], b_dec: [8] });
    const file = join(path, 'sae.safetensors');
    truncateSync(file, statSync(file).size - 10);
    await expect(SparseCoder.loadFromDisk(path)).rejects.toThrow(/sae\.safetensors: corrupt or truncated safetensors file/);
  });

  it('corrupt sae.safetensors (garbage header)', async () => {
    const path = join(dir, 'corrupt');
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, 'cfg.json'), JSON.stringify(refCfg()));
    writeFileSync(join(path, 'sae.safetensors'), Buffer.concat([Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('not json at all!')]));
    await expect(SparseCoder.loadFromDisk(path)).rejects.toThrow(`${join(path, 'sae.safetensors')}: corrupt safetensors file (its header is not valid JSON)`);
    writeFileSync(join(path, 'sae.safetensors'), 'abc');
    await expect(SparseCoder.loadFromDisk(path)).rejects.toThrow(/not a safetensors file/);
  });

  it('weights whose shapes disagree with the config', async () => {
    const path = join(dir, 'shape-mismatch');
    await writeWithPython(path, refCfg({ num_latents: 16 }), { 'encoder.weight': [16, 9], 'encoder.bias': [16], W_dec: [16, 9], b_dec: [9] });
    await expect(SparseCoder.loadFromDisk(path)).rejects.toThrow(
      `${join(path, 'sae.safetensors')}: tensor 'encoder.weight' has shape [16, 9] but cfg.json (d_in=8, 16 latents) needs [16, 8]`,
    );
    const missing = join(dir, 'missing-tensor');
    await writeWithPython(missing, refCfg({ num_latents: 16 }), { 'encoder.weight': [16, 8], 'encoder.bias': [16], b_dec: [8] });
    await expect(SparseCoder.loadFromDisk(missing)).rejects.toThrow(/tensor 'W_dec' is missing/);
  });

  it('unknown activation', async () => {
    const path = join(dir, 'bad-activation');
    await writeWithPython(path, refCfg({ activation: 'relu' }), {});
    await expect(SparseCoder.loadFromDisk(path)).rejects.toThrow(`${join(path, 'cfg.json')}: activation: invalid value "relu" (allowed: ${ACTIVATION_NAMES.join(', ')})`);
    await expect(SparseCoder.create(8, { activation: 'relu' as 'topk' })).rejects.toThrow(ConfigError);
    await expect(SparseCoder.create(8, { activation: 'relu' as 'topk' })).rejects.toThrow(`activation: invalid value "relu" (allowed: ${ACTIVATION_NAMES.join(', ')})`);
  });

  it('k larger than the latent count', async () => {
    await expect(SparseCoder.create(8, { k: 20, numLatents: 16 })).rejects.toThrow('sparse coder config: k=20 is larger than the number of latents (16); use k <= 16');
    const path = join(dir, 'big-k');
    await writeWithPython(path, refCfg({ k: 40, num_latents: 16 }), {});
    await expect(SparseCoder.loadFromDisk(path)).rejects.toThrow(/cfg\.json: k=40 is larger than the number of latents \(16\)/);
  });

  it('groupmax with M not divisible by k', async () => {
    await expect(SparseCoder.create(8, { k: 5, numLatents: 16, activation: 'groupmax' })).rejects.toThrow('groupmax needs the number of latents (16) to be divisible by k=5');
  });

  it('input of the wrong width', async () => {
    const coder = await SparseCoder.create(8, { k: 2, numLatents: 16 });
    await expect(coder.encode(await randn([3, 9], 0))).rejects.toThrow('x must have shape [N, 8] for this coder (d_in=8); got [3, 9]');
  });

  it('unknown config option and a bad type', async () => {
    await expect(SparseCoder.create(8, { kk: 3 } as never)).rejects.toThrow(/unknown option\(s\) kk/);
    await expect(SparseCoder.create(8, { k: 2.5 })).rejects.toThrow(/k: .*got 2\.5/);
  });
});

describe('loadMany', () => {
  it('returns coders in natural order and honours layers and pattern', async () => {
    const root = join(dir, 'many');
    for (const name of ['layers.10', 'layers.2', 'layers.0', 'embed_tokens', 'h.1.mlp']) {
      const coder = await SparseCoder.create(8, { k: 2, numLatents: 16 }, { seed: 1 });
      await coder.saveToDisk(join(root, name));
    }
    mkdirSync(join(root, 'not-a-coder'));
    writeFileSync(join(root, 'README.md'), 'hello');
    const all = await SparseCoder.loadMany(root);
    expect([...all.keys()]).toEqual(['embed_tokens', 'h.1.mlp', 'layers.0', 'layers.2', 'layers.10']);
    expect([...(await SparseCoder.loadMany(root, { layers: ['layers.10', 'layers.2'] })).keys()]).toEqual(['layers.2', 'layers.10']);
    expect([...(await SparseCoder.loadMany(root, { pattern: 'layers.[!0]*' })).keys()]).toEqual(['layers.2', 'layers.10']);
    await expect(SparseCoder.loadMany(root, { layers: ['layers.7'] })).rejects.toThrow(/no coder for layers\.7/);
    await expect(SparseCoder.loadMany(root, { layers: ['a'], pattern: 'b' })).rejects.toThrow(/not both/);
  });
});
