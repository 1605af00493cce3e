// Runs are never lost or mixed: a directory holds one run, one process at a time; resume
// continues that run only; library objects never outlive their runtime.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, appendFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer, type StepReport } from '../../src/trainer/index.js';
import { SparseCoder } from '../../src/coder/index.js';
import { closeRuntime, Tensor } from '../../src/bridge/index.js';
import { trainConfig, type TrainConfigInput } from '../../src/config/index.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';
import { exited, spawnTs, waitForLine } from '../helpers/processes.js';
import { checkNotLocked, launchedJob, lockRunDir } from '../../src/trainer/run-dir.js';

let work: string;
let fx: Fixture;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-runs-'));
  fx = await tinyFixture(work, { rows: 64, ctxLen: 16 });
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

const base: TrainConfigInput = { sae: { k: 4, numLatents: 64 }, batchSize: 8, logToWandb: false };
function trainer(runName: string, cfg: TrainConfigInput = {}, options: { overwrite?: boolean; onStep?: (r: StepReport) => void } = {}): Trainer {
  return new Trainer({ ...base, saveDir: work, runName, ...cfg }, fx.data, fx.model, { log: () => undefined, ...options });
}
const metricSteps = (run: string): number[] =>
  readFileSync(join(work, run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { step: number }).step);

describe('one run per directory', () => {
  it('a second run into a directory that holds one is refused, naming --resume and --overwrite', async () => {
    await trainer('twice', { hookpoints: ['layers.0'] }).fit();
    await expect(trainer('twice', { hookpoints: ['layers.1'] }).fit()).rejects.toThrow(/already holds a run; pass --resume to continue it, or --overwrite to move it aside/);
    // Nothing of the first run was touched.
    expect(readdirSync(join(work, 'twice')).sort()).toEqual(['checkpoint.json', 'config.json', 'layers.0', 'metrics.jsonl', 'state.json', 'state.safetensors']);
  });

  it('--overwrite moves the earlier run aside atomically and starts clean: no stale coders, a fresh metrics log', async () => {
    await trainer('over', { hookpoints: ['layers.0'] }).fit();
    await trainer('over', { hookpoints: ['layers.1'] }, { overwrite: true }).fit();
    expect(readdirSync(join(work, 'over')).sort()).toEqual(['checkpoint.json', 'config.json', 'layers.1', 'metrics.jsonl', 'state.json', 'state.safetensors']);
    expect(metricSteps('over')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const aside = readdirSync(work).filter((n) => n.startsWith('over.old-'));
    expect(aside).toHaveLength(1);
    expect(existsSync(join(work, aside[0]!, 'layers.0', 'sae.safetensors'))).toBe(true);
  });
});

describe('the run directory lock', () => {
  it('a second process stops at once naming the PID that holds the directory; a dead holder is taken over', async () => {
    const saveDir = join(work, 'locked');
    const child = spawnTs('test/fixtures/train-child.ts', [fx.modelDir, saveDir]);
    await waitForLine(child, /STEP (\d+)/);
    const other = new Trainer({ sae: { k: 4, numLatents: 256 }, batchSize: 2, logToWandb: false, saveDir, runName: 'killed' }, fx.data, fx.model, { log: () => undefined });
    const t0 = Date.now();
    await expect(other.loadState()).rejects.toThrow(new RegExp(`is in use by process ${child.pid} \\(since `));
    expect(Date.now() - t0).toBeLessThan(5000);
    while (!existsSync(join(saveDir, 'killed', 'state.json'))) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await exited(child);
    const lock = JSON.parse(readFileSync(join(saveDir, 'killed', '.lock'), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(child.pid); // left behind by the kill
    await other.loadState(); // stale: taken over
    expect(other.globalStep).toBeGreaterThan(0);
    other.close();
    expect(existsSync(join(saveDir, 'killed', '.lock'))).toBe(false);
  });
});

describe('the run lock of a torchrun job', () => {
  it('is taken over by a process of the same job (a restarted worker, on any host), and refused to another job', async () => {
    const dir = join(work, 'job-lock');
    mkdirSync(dir, { recursive: true });
    // A live holder (this test's parent) on another host, of job "torchrun:abc".
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: process.ppid, host: 'elsewhere', started: 'then', job: 'torchrun:abc' }));
    const env = { ...process.env };
    try {
      process.env.RANK = '0';
      process.env.TORCHELASTIC_RUN_ID = 'xyz';
      expect(() => checkNotLocked(dir)).toThrow(/is in use by process \d+ on elsewhere/);
      process.env.TORCHELASTIC_RUN_ID = 'abc';
      expect(launchedJob()).toBe('torchrun:abc');
      checkNotLocked(dir);
      const lock = await lockRunDir(dir);
      expect((JSON.parse(readFileSync(join(dir, '.lock'), 'utf8')) as { pid: number; job: string })).toMatchObject({ pid: process.pid, job: 'torchrun:abc' });
      lock.release();
    } finally {
      process.env = env;
    }
  });
});

describe('resume', () => {
  it('refuses a changed coder setting, naming it with its saved and new values', async () => {
    await trainer('changed', {}, {}).fit();
    const t = trainer('changed', { sae: { k: 8, numLatents: 64 } });
    await expect(t.loadState()).rejects.toThrow(/trained with k=4, this run has k=8; resume with --k 4/);
    t.close();
    const u = trainer('changed', { sae: { k: 4, numLatents: 64, activation: 'groupmax' } });
    await expect(u.loadState()).rejects.toThrow(/trained with activation="topk", this run has activation="groupmax"/);
    u.close();
  });

  it('refuses a module whose width changed, instead of a torch size error', async () => {
    await trainer('width', { hookpoints: ['layers.0'] }).fit();
    const other = await tinyFixture(join(work, 'wide'), { rows: 64, ctxLen: 16, hidden: 48 });
    const t = new Trainer({ ...base, saveDir: work, runName: 'width', hookpoints: ['layers.0'], sae: { k: 4, numLatents: 64 } }, other.data, other.model, { log: () => undefined });
    await expect(t.loadState()).rejects.toThrow(/layers.0 was trained on width 32, but 'layers.0' of this model has width 48/);
    t.close();
  });

  it('after a kill, metrics.jsonl keeps no step twice: it is cut back to the checkpoint', async () => {
    const first = trainer('metrics', { saveEvery: 3 }, {
      onStep: (r) => {
        if (r.step === 4) first.requestStop();
      },
    });
    await first.fit(); // checkpoint at step 4
    // A kill after steps 5 and 6 were logged but before their checkpoint:
    appendFileSync(join(work, 'metrics', 'metrics.jsonl'), `${JSON.stringify({ step: 5 })}\n${JSON.stringify({ step: 6 })}\n{"step": 7, "fv`);
    const resumed = trainer('metrics', { saveEvery: 3 });
    await resumed.loadState();
    await resumed.fit();
    expect(metricSteps('metrics')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe('configs that would mix coders or leave save_dir', () => {
  it('a seed given twice is an error', () => {
    expect(() => trainConfig({ initSeeds: [0, 0] })).toThrow('train config: init_seeds: seed 0 is given twice; each seed trains its own coder (seedN), so give each once');
  });

  it('a run name that leaves save_dir is refused', () => {
    for (const bad of ['../elsewhere', 'a/../../b', '/abs/path', '~/x', '..']) expect(() => trainConfig({ runName: bad })).toThrow(/run_name: .* would leave save_dir/);
    expect(trainConfig({ runName: 'group/run-1' }).runName).toBe('group/run-1');
  });

  it('several seeds train several coders per hookpoint (the reference crashes on this)', async () => {
    const t = trainer('seeds', { initSeeds: [0, 1], hookpoints: ['layers.0'] });
    await t.fit();
    const coders = await SparseCoder.loadMany(join(work, 'seeds', 'layers.0'));
    expect([...coders.keys()]).toEqual(['seed0', 'seed1']);
    const [a, b] = await Promise.all([...coders.values()].map(async (c) => Array.from((await (await c.parameter('encoder.weight')).toArray()) as Float32Array)));
    expect(a).not.toEqual(b);
  });

  it('--auxk_no_bias is recorded in config.json and changes the training', async () => {
    const cfg: TrainConfigInput = { auxkAlpha: 1, deadFeatureThreshold: 1, hookpoints: ['layers.0'] };
    await trainer('auxk-bias', cfg).fit();
    await trainer('auxk-nobias', { ...cfg, auxkNoBias: true }).fit();
    expect(JSON.parse(readFileSync(join(work, 'auxk-nobias', 'config.json'), 'utf8'))).toMatchObject({ auxk_no_bias: true });
    expect(JSON.parse(readFileSync(join(work, 'auxk-bias', 'config.json'), 'utf8'))).toMatchObject({ auxk_no_bias: false });
    const w = async (run: string): Promise<number[]> => Array.from((await (await (await SparseCoder.loadFromDisk(join(work, run, 'layers.0'))).parameter('W_dec')).toArray()) as Float32Array);
    expect(await w('auxk-bias')).not.toEqual(await w('auxk-nobias'));
  });
});

describe('objects of a closed runtime', () => {
  it('a coder or tensor used after closeRuntime() says the runtime was closed, even once a new one runs', async () => {
    const coder = await SparseCoder.create(8, { k: 2, numLatents: 16 }, { seed: 0 });
    const x = await Tensor.fromArray(new Float32Array(16), [2, 8]);
    closeRuntime();
    const fresh = await SparseCoder.create(8, { k: 2, numLatents: 16 }, { seed: 1 }); // a new runtime
    await expect(coder.encode(x)).rejects.toThrow(/runtime was closed/);
    await expect(coder.parameter('W_dec')).rejects.toThrow(/runtime was closed/);
    await expect(x.toArray()).rejects.toThrow(/runtime was closed/);
    await expect(fresh.encode(x)).rejects.toThrow(/mixes objects of two Python runtimes|runtime was closed/);
    expect((await fresh.parameter('W_dec')).shape).toEqual([16, 8]);
  });
});
