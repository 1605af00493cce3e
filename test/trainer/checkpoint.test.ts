// Saves are atomic: a crash or kill during a save leaves a whole checkpoint readable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beginSave, commitSave, finishSave, readMarker, recover, stageSave, writeMarker } from '../../src/trainer/checkpoint.js';
import { Trainer } from '../../src/trainer/trainer.js';
import { SparseCoder } from '../../src/coder/sparse-coder.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { exited, spawnTs, waitForLine } from '../helpers/processes.js';
import { tinyFixture, type Fixture } from '../helpers/train-fixtures.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-ckpt-'));
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

async function saveVersion(dir: string, version: string): Promise<void> {
  const staging = await beginSave(dir);
  mkdirSync(join(staging, 'layers.0'));
  writeFileSync(join(staging, 'layers.0', 'w'), version);
  writeFileSync(join(staging, 'state.json'), version);
  await commitSave(dir, ['layers.0', 'state.json']);
}

describe('checkpoint commits', () => {
  it('two phases over ranks: a staged part counts only once the marker names its step', async () => {
    const dir = join(work, 'phases');
    const stage = async (tag: string, version: string, step: number): Promise<void> => {
      const staging = await beginSave(dir, tag);
      writeFileSync(join(staging, `state${tag}.json`), version);
      await stageSave(dir, [`state${tag}.json`], step, tag);
    };
    // Step 4 everywhere: staged by both ranks, marked, moved into place.
    for (const tag of ['-rank0', '-rank1']) await stage(tag, 'v4', 4);
    await writeMarker(dir, { step: 4, world_size: 2 });
    for (const tag of ['-rank0', '-rank1']) await finishSave(dir, tag);
    expect(readMarker(dir)!.step).toBe(4);
    // Step 8: both staged, the marker never written (rank 0 died): both parts are discarded.
    for (const tag of ['-rank0', '-rank1']) await stage(tag, 'v8', 8);
    expect(await recover(dir, '-rank1')).toBe('discarded');
    expect(existsSync(join(dir, '.saving-rank0'))).toBe(true); // another rank's part is its own to recover
    expect(await recover(dir)).toBe('discarded');
    for (const tag of ['-rank0', '-rank1']) expect(readFileSync(join(dir, `state${tag}.json`), 'utf8')).toBe('v4');
    // Step 12: marked, but rank 1 died before moving its part: the next load rolls it forward.
    for (const tag of ['-rank0', '-rank1']) await stage(tag, 'v12', 12);
    await writeMarker(dir, { step: 12, world_size: 2 });
    await finishSave(dir, '-rank0');
    expect(await recover(dir, '-rank1')).toBe('rolled-forward');
    for (const tag of ['-rank0', '-rank1']) expect(readFileSync(join(dir, `state${tag}.json`), 'utf8')).toBe('v12');
  });

  it('a save that dies before COMMIT is discarded: the previous checkpoint stays', async () => {
    const dir = join(work, 'precommit');
    await saveVersion(dir, 'v1');
    const staging = await beginSave(dir);
    mkdirSync(join(staging, 'layers.0'));
    writeFileSync(join(staging, 'layers.0', 'w'), 'v2-partial'); // then "crash"
    expect(await recover(dir)).toBe('discarded');
    expect(readFileSync(join(dir, 'layers.0', 'w'), 'utf8')).toBe('v1');
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).toBe('v1');
    expect(existsSync(join(dir, '.saving'))).toBe(false);
  });

  it('a save that dies after COMMIT, half moved, is rolled forward to the new checkpoint', async () => {
    const dir = join(work, 'postcommit');
    await saveVersion(dir, 'v1');
    const staging = await beginSave(dir);
    mkdirSync(join(staging, 'layers.0'));
    writeFileSync(join(staging, 'layers.0', 'w'), 'v2');
    writeFileSync(join(staging, 'state.json'), 'v2');
    writeFileSync(join(staging, 'COMMIT'), JSON.stringify(['layers.0', 'state.json']));
    // Simulate a crash after the first entry moved.
    mkdirSync(join(staging, '.old'), { recursive: true });
    const { renameSync } = await import('node:fs');
    renameSync(join(dir, 'layers.0'), join(staging, '.old', 'layers.0'));
    renameSync(join(staging, 'layers.0'), join(dir, 'layers.0'));
    expect(await recover(dir)).toBe('rolled-forward');
    expect(readFileSync(join(dir, 'layers.0', 'w'), 'utf8')).toBe('v2');
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).toBe('v2');
  });
});

describe('killing a training process during saves', () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await tinyFixture(work, { rows: 64, ctxLen: 16 });
  });

  it('leaves the previous checkpoint loadable and resumable', async () => {
    const saveDir = join(work, 'kill');
    const runDir = join(saveDir, 'killed');
    for (let attempt = 0; attempt < 3; attempt++) {
      const child = spawnTs('test/fixtures/train-child.ts', [fx.modelDir, saveDir]);
      await waitForLine(child, /STEP (\d+)/);
      // Once a first checkpoint exists, kill while the next save is staged.
      while (!existsSync(join(runDir, 'state.json'))) await new Promise((r) => setTimeout(r, 5));
      const deadline = Date.now() + 5000 + attempt * 500;
      while (Date.now() < deadline && !existsSync(join(runDir, '.saving', 'layers.0'))) await new Promise((r) => setImmediate(r));
      child.kill('SIGKILL');
      await exited(child);
      const trainer = new Trainer({ sae: { k: 4, numLatents: 256 }, batchSize: 2, saveEvery: 1, logToWandb: false, saveDir, runName: 'killed' }, fx.data, fx.model, { log: () => undefined });
      await trainer.loadState();
      expect(trainer.globalStep).toBeGreaterThan(0);
      const coders = await SparseCoder.loadMany(runDir);
      expect([...coders.keys()]).toEqual(['layers.0', 'layers.1']);
      expect(existsSync(join(runDir, '.saving'))).toBe(false);
      trainer.close(); // the next attempt's process takes the run directory over
    }
  });
});
