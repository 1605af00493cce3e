// What a new user reads: each mistake is one line in the words of the flags they typed,
// given before anything slow loads; --version and the commands' help; an offline Hub fails
// at once. The real CLI, as child processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { closeRuntime } from '../../src/bridge/index.js';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { makeTinyLM } from '../helpers/python.js';
import { repoRoot } from '../helpers/processes.js';
import { CORPUS } from '../helpers/train-fixtures.js';
import { ACTIVATION_NAMES } from '../../src/activations/index.js';

let work: string;
let modelDir: string;
let wideModel: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-messages-'));
  modelDir = await makeTinyLM(join(work, 'lm'));
  wideModel = await makeTinyLM(join(work, 'wide'), { hidden: 48 });
  closeRuntime();
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The CLI from source as a child process: its exit code, stdout, stderr and how long it took. */
function cli(args: string[], env: Record<string, string> = {}, bin = 'test/fixtures/cli.ts'): { code: number | null; out: string; err: string; seconds: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', bin, ...args], { cwd: repoRoot, env: { ...process.env, HF_HUB_OFFLINE: '1', WANDB_MODE: 'disabled', ...env }, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr, seconds: (Date.now() - t0) / 1000 };
}

/** Exactly one line on stderr, and no model or Python loaded for it. */
function oneLine(r: { code: number | null; err: string }, code: number): string {
  expect(r.code).toBe(code);
  const lines = r.err.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('mistakes, in the words of the flags', () => {
  it('a missing or wrongly typed option names the flag and what it takes', () => {
    expect(oneLine(cli(['cache']), 2)).toBe('sparsify cache: --out is required');
    expect(oneLine(cli([modelDir, '--sweep', 'k=abc']), 2)).toBe('sparsify: --sweep: k=abc: k takes whole numbers above 0');
    expect(oneLine(cli(['eval', join(work, 'x'), '--max_tokens', '0']), 2)).toBe('sparsify eval: --max_tokens must be more than 0 (got 0)');
    expect(oneLine(cli([modelDir, '-k', '1.5']), 2)).toBe('sparsify: -k takes a whole number (got 1.5)');
  }, 60_000);

  it('a k the coders cannot take, and a broken coder config.json, are said before a model loads', () => {
    const k = cli([modelDir, CORPUS, '-k', '5000', '--save_dir', work, '--run_name', 'bigk']);
    expect(oneLine(k, 1)).toBe('sparsify: k=5000 is larger than the 1024 latents of the layers (width 32 x expansion_factor 32); use k <= 1024');
    const broken = join(work, 'broken', 'layers.0');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, 'cfg.json'), '{"k": 4, "d_in": 32, "activation": "relu"}');
    writeFileSync(join(work, 'broken', 'config.json'), JSON.stringify({ model: modelDir, dataset: CORPUS }));
    const line = oneLine(cli(['eval', join(work, 'broken')]), 1);
    expect(line).toBe(`sparsify eval: ${join(broken, 'cfg.json')}: activation: invalid value "relu" (allowed: ${ACTIVATION_NAMES.join(', ')})`);
    const ft = cli([modelDir, CORPUS, '--finetune', join(work, 'broken'), '--save_dir', work, '--run_name', 'ft']);
    expect(oneLine(ft, 1)).toBe(`sparsify: ${join(broken, 'cfg.json')}: activation: invalid value "relu" (allowed: ${ACTIVATION_NAMES.join(', ')})`);
  }, 60_000);

  it('explore with a model of another width names the mismatch, as eval does (test/cli/eval.test.ts)', async () => {
    const coders = join(work, 'narrow');
    const sae = await SparseCoder.create(32, { k: 4, numLatents: 64 }, { seed: 0 });
    await sae.saveToDisk(join(coders, 'layers.0'));
    closeRuntime();
    const want = "coder layers.0 has d_in=32 but 'layers.0' of this model has width 48";
    const r = cli(['explore', coders, wideModel, CORPUS, '--ctx_len', '16', '--out', join(work, 'explore-out')]);
    expect([r.code, r.err.trim().split('\n').pop()]).toEqual([1, `sparsify explore: ${want}`]);
  }, 120_000);

  it('SparseCoder.loadMany of a folder without coders fails as the CLI does', async () => {
    const empty = join(work, 'empty');
    mkdirSync(empty);
    await expect(SparseCoder.loadMany(empty)).rejects.toThrow(`${empty}: no coder directories (a coder directory holds cfg.json and sae.safetensors)`);
    expect(oneLine(cli(['eval', empty]), 1)).toBe(`sparsify eval: ${empty}: no coder directories (a coder directory holds cfg.json and sae.safetensors)`);
  }, 60_000);
});

describe('version and help', () => {
  it('--version and -V print the version; --help lists the commands; sparsify-launch --help shows torchrun options', () => {
    const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) expect(cli([flag]).out.trim()).toBe(version);
    const help = cli(['--help']).out;
    for (const command of ['train', 'eval', 'explore', 'cache', 'setup']) expect(help).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
    const launch = cli(['--help'], {}, 'test/fixtures/launch.ts');
    expect(launch.code).toBe(0);
    expect(launch.out).toContain('--nproc_per_node N');
    expect(launch.out).toContain('--rdzv_endpoint HOST:PORT');
    expect(launch.out.trim().split('\n').pop()).toBe('Everything else goes to `sparsify` on every rank: see `sparsify --help`.');
  }, 60_000);
});

describe('the Hub out of reach', () => {
  it('a Hub name fails at once with one line; a model in the Hugging Face cache still loads', () => {
    const env = { HF_HUB_OFFLINE: '', HF_ENDPOINT: 'http://127.0.0.1:9', HF_HOME: join(work, 'hf-home') };
    const r = cli(['org/not-cached', CORPUS, '--save_dir', work, '--run_name', 'offline'], env);
    expect(r.code).toBe(1);
    const lines = r.err.trim().split('\n');
    expect(lines.pop()).toBe("sparsify: could not load model 'org/not-cached': it is not in the Hugging Face cache and the Hub cannot be reached (offline); connect, or give a local path");
    expect(lines.join('\n')).not.toMatch(/Retry|Traceback/);
    expect(r.seconds).toBeLessThan(30);
    // The same model name, put in the cache: loads without the Hub.
    const snapshot = join(work, 'hf-home', 'hub', 'models--org--cached', 'snapshots', '0123456789abcdef0123456789abcdef01234567');
    mkdirSync(snapshot, { recursive: true });
    for (const f of readdirSync(modelDir)) writeFileSync(join(snapshot, f), readFileSync(join(modelDir, f)));
    mkdirSync(join(work, 'hf-home', 'hub', 'models--org--cached', 'refs'), { recursive: true });
    writeFileSync(join(work, 'hf-home', 'hub', 'models--org--cached', 'refs', 'main'), '0123456789abcdef0123456789abcdef01234567');
    const cached = cli(['org/cached', CORPUS, '--ctx_len', '16', '--max_examples', '16', '--batch_size', '8', '-k', '4', '--expansion_factor', '2', '--save_dir', work, '--run_name', 'cached'], env);
    expect([cached.code, cached.err]).toEqual([0, expect.stringContaining('Done: 2 steps.')]);
  }, 120_000);
});
