// Ranks that die or hang, through the real torchrun (2 ranks, gloo): with --max_restarts and
// --resume auto a job whose rank was killed after its first checkpoint finishes with the
// uninterrupted run's coders, bit for bit; a rank killed in the middle of a save leaves the
// checkpoint before it complete for every rank (the half-written one is not counted); a rank
// that hangs fails the job within --dist_timeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { makeTinyLM } from '../helpers/python.js';
import { exited } from '../helpers/processes.js';
import { compareCoders, rankPid, runBin, writeRankRows } from '../helpers/launch.js';

let work: string;
let modelDir: string;
const B = 1;
const CTX = 16;
const ROWS = 48; // 24 steps of one row per rank
const LAYERS = ['layers.0', 'layers.1'];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-faults-'));
  modelDir = await makeTinyLM(join(work, 'lm'), { hidden: 32, layers: 2 });
  await writeRankRows({ path: join(work, 'tokens.bin'), interleaved: join(work, 'interleaved.bin'), rows: ROWS, ctx: CTX, batch: B, vocab: 200 });
  closeRuntime();
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const common = ['--ctx_len', String(CTX), '--expansion_factor', '2', '-k', '4', '--save_dir', '.', '--log_to_wandb', 'false', '--batch_size', String(B), '--save_every', '4'];

function launch(name: string, extra: string[], options: { env?: NodeJS.ProcessEnv; torchrun?: string[] } = {}): ReturnType<typeof runBin> {
  return runBin('sparsify-launch', [...(options.torchrun ?? []), '--nproc_per_node', '2', modelDir, 'tokens.bin', ...common, ...extra, '--run_name', name], work, options.env);
}

/** An uninterrupted run to compare with (made once). */
async function uninterrupted(name: string, extra: string[]): Promise<string> {
  if (!existsSync(join(work, name, 'checkpoint.json'))) {
    const run = launch(name, extra);
    expect([(await exited(run)).code, run.output()]).toEqual([0, expect.stringContaining('Done: 24 steps.')]);
  }
  return join(work, name);
}

async function until(what: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const marker = (name: string): { step: number } | undefined => (existsSync(join(work, name, 'checkpoint.json')) ? (JSON.parse(readFileSync(join(work, name, 'checkpoint.json'), 'utf8')) as { step: number }) : undefined);

describe('faults', () => {
  it('--max_restarts with --resume auto: a rank killed after the first checkpoint, the job restarts, resumes by itself and ends with the uninterrupted run\'s coders', async () => {
    const full = await uninterrupted('full', []);
    const job = launch('restarted', ['--resume', 'auto'], { torchrun: ['--max_restarts', '1'] });
    await until(() => marker('restarted') !== undefined, 120_000);
    const victim = rankPid('restarted', 1);
    expect(victim).toBeDefined();
    process.kill(victim!, 'SIGKILL');
    const { code } = await exited(job);
    const out = job.output();
    expect([code, out]).toEqual([0, expect.stringContaining('Done: 24 steps.')]);
    expect(out).toContain('--resume auto: no complete checkpoint in');
    expect(out).toMatch(/--resume auto: .*restarted holds a complete checkpoint; resuming[\s\S]*Resumed from .*restarted at step (4|8|12|16|20)/);
    expect(await compareCoders(join(work, 'restarted'), full, LAYERS)).toBe(0);
    expect(marker('restarted')!.step).toBe(24);
  }, 300_000);

  for (const mode of ['data parallel', 'distribute_modules'] as const) {
    it(`${mode}: a rank killed in the middle of a save leaves the checkpoint before it whole for every rank; resuming discards the half-written one`, async () => {
      const name = mode === 'data parallel' ? 'mid-save' : 'mid-save-dm';
      const dm = mode === 'data parallel' ? [] : ['--distribute_modules'];
      // Rank 0 (data parallel: the only one that writes) or rank 1 dies once its part of step 8 is staged.
      const victim = mode === 'data parallel' ? 0 : 1;
      const job = launch(name, dm, { env: { SPARSIFY_TESTING: '1', SPARSIFY_TEST_DIE_IN_SAVE: `8,${victim}` } });
      const { code } = await exited(job);
      expect(code).not.toBe(0);
      expect(job.output()).toMatch(new RegExp(`sparsify-launch: rank ${victim} \\(local rank ${victim} on [^)]+\\) was killed by signal 9`));
      // The marker still names step 4: the staged parts of step 8 do not count.
      expect(marker(name)!.step).toBe(4);
      expect(readdirSync(join(work, name)).some((f) => f.startsWith('.saving'))).toBe(true);
      const states = readdirSync(join(work, name)).filter((f) => /^state.*\.json$/.test(f));
      for (const f of states) expect((JSON.parse(readFileSync(join(work, name, f), 'utf8')) as { global_step: number }).global_step).toBe(4);
      // Resumed (auto), it goes on from step 4 and ends as the uninterrupted run.
      const resumed = launch(name, [...dm, '--resume', 'auto']);
      const again = await exited(resumed);
      expect([again.code, resumed.output()]).toEqual([0, expect.stringMatching(/an interrupted save was discarded[\s\S]*Resumed from .* at step 4[\s\S]*Done: 24 steps/)]);
      const reference = await uninterrupted(mode === 'data parallel' ? 'full' : 'full-dm', dm);
      expect(await compareCoders(join(work, name), reference, LAYERS)).toBe(0);
      expect(readdirSync(join(work, name)).some((f) => f.startsWith('.saving'))).toBe(false);
    }, 300_000);
  }

  it('a rank that hangs (SIGSTOP) fails the job within --dist_timeout, with one line saying a collective timed out', async () => {
    const job = launch('hang', ['--dist_timeout', '5', '--save_every', '1000']);
    await until(() => job.output().includes('step 1/'), 120_000);
    const victim = rankPid('hang', 1);
    expect(victim).toBeDefined();
    process.kill(victim!, 'SIGSTOP');
    const t0 = Date.now();
    try {
      // Rank 0 gives up after dist_timeout (5 s) and says why.
      await until(() => /sparsify: \[rank 0\] a collective timed out waiting for another rank: a rank failed or was stopped; torchrun ends the job, or restarts it with --max_restarts/.test(job.output()), 60_000);
      expect(Date.now() - t0).toBeLessThan(30_000);
    } finally {
      // torchrun's SIGTERM waits for the stopped rank to run again: end it now.
      try {
        process.kill(victim!, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    expect((await exited(job)).code).not.toBe(0);
  }, 120_000);
});
