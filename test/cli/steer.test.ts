// `sparsify steer MODEL RUN PROMPT`: the continuation with a latent's decoder row added (scale 0
// prints the baseline's text again), the same greedy text as the API, and its bad inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { SparseCoder } from '../../src/coder/index.js';
import { CausalLM } from '../../src/model/index.js';
import { runCli } from '../helpers/cli.js';
import { makeTinyLM } from '../helpers/python.js';

let work: string;
let modelDir: string;
let coders: string;
let plain: string;
let steered: string;
const PROMPT = 'The whale swam';
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-cli-steer-'));
  modelDir = await makeTinyLM(join(work, 'lm'));
  coders = join(work, 'coders');
  const coder = await SparseCoder.create(32, { k: 4, numLatents: 64 }, { seed: 1 });
  await coder.saveToDisk(join(coders, 'layers.1'));
  const lm = await CausalLM.load(modelDir);
  plain = (await lm.generate(PROMPT, { maxNewTokens: 6 })).text;
  steered = (await lm.generate(PROMPT, { maxNewTokens: 6, interventions: [{ hookpoint: 'layers.1', coder, latent: 9, scale: 30 }] })).text;
  closeRuntime();
}, 120_000);
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

describe('sparsify steer', () => {
  it('prints the steered continuation, and with --baseline the one without', async () => {
    const one = await runCli(['steer', modelDir, coders, '--latent', 'layers.1:9', '--scale', '30', '--max_new_tokens', '6', PROMPT]);
    expect([one.code, one.out]).toEqual([0, `${PROMPT}${steered}\n`]);
    const both = await runCli(['steer', modelDir, coders, PROMPT, '--latent', 'layers.1:9', '--scale', '0', '--max_new_tokens', '6', '--baseline']);
    expect([both.code, both.out]).toEqual([0, `without: ${PROMPT}${plain}\nwith layers.1:9 scale 0: ${PROMPT}${plain}\n`]);
  }, 60_000);

  it('bad input is one line, before the model loads where it can be', async () => {
    const err = async (...args: string[]): Promise<[number, string]> => {
      const r = await runCli(['steer', modelDir, coders, PROMPT, ...args]);
      return [r.code, r.err.trim()];
    };
    expect(await err('--latent', 'layers.1:9')).toEqual([2, 'sparsify steer: --scale: give exactly one of --scale and --clamp']);
    expect(await err('--latent', 'layers.1', '--scale', '2')).toEqual([2, 'sparsify steer: --latent: give CODER:LATENT, such as layers.3:100 (several: layers.1:5,layers.3:100)']);
    expect(await err('--latent', 'layers.1:64', '--clamp', '2')).toEqual([1, 'sparsify steer: intervention 0 (layers.1:64): latent 64 is out of range: the coder has latents 0..63']);
    expect(await err('--latent', 'layers.7:1', '--clamp', '2')).toEqual([1, `sparsify steer: ${coders}: no coder for layers.7 (found: layers.1)`]);
    expect(await err('--latent', 'layers.1:1', '--scale', '2', '--max_new_tokens', '5000')).toEqual([2, 'sparsify steer: --max_new_tokens must be at most 4096 (got 5000)']);
  }, 60_000);
});
