// Distributed training on this machine: 2 ranks, gloo, loopback, through the real torchrun.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { describeFailure, splitArgs } from '../../src/launch/launch.js';
import { makeTinyLM, py } from '../helpers/python.js';
import { exited, repoRoot } from '../helpers/processes.js';
import { compareCoders, rankPid, runBin, writeRankRows } from '../helpers/launch.js';

let work: string;
let modelDir: string;
let bin: string;
let binInterleaved: string;
const B = 4;
const CTX = 16;
const ROWS = 50; // 25 per rank; with B=4: 7 steps, the last one short

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-dist-'));
  modelDir = await makeTinyLM(join(work, 'lm'), { hidden: 32, layers: 2 });
  bin = join(work, 'tokens.bin');
  binInterleaved = join(work, 'interleaved.bin');
  await writeRankRows({ path: bin, interleaved: binInterleaved, rows: ROWS, ctx: CTX, batch: B, vocab: 200 });
  closeRuntime();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (command: 'sparsify' | 'sparsify-launch', args: string[]): ReturnType<typeof runBin> => runBin(command, args, work);

const common = ['--ctx_len', String(CTX), '--expansion_factor', '2', '-k', '4', '--save_dir', '.', '--log_to_wandb', 'false'];

const compare = compareCoders;

describe('sparsify-launch', () => {
  it('splits torchrun options from sparsify options and names the failed rank', () => {
    expect(splitArgs(['--nproc_per_node', '2', 'gpt2', '--nnodes=1', '--master-port', '29501', '-k', '8', '--standalone'])).toEqual({
      torchrunArgs: ['--nproc_per_node', '2', '--nnodes', '1', '--master_port', '29501', '--standalone'],
      sparsifyArgs: ['gpt2', '-k', '8'],
    });
    const report = 'Root Cause (first observed failure):\n[0]:\n  time      : x\n  host      : box\n  rank      : 1 (local_rank: 1)\n  exitcode  : -9 (pid: 42)\n  error_file: <N/A>\n  traceback : Signal 9 (SIGKILL) received by PID 42\n';
    expect(describeFailure(report)).toBe('rank 1 (local rank 1 on box) was killed by signal 9; torchrun stopped the run');
    const both = `Failures:\n[1]:\n  time      : x\n  host      : box\n  rank      : 1 (local_rank: 1)\n  exitcode  : -9 (pid: 42)\nRoot Cause (first observed failure):\n[0]:\n  time      : x\n  host      : box\n  rank      : 0 (local_rank: 0)\n  exitcode  : 1 (pid: 41)\n`;
    expect(describeFailure(both)).toBe('rank 1 (local rank 1 on box) was killed by signal 9; torchrun stopped the run (then: rank 0 exited with code 1)');
  });

  it('2-rank data parallel equals one process averaging each rank\'s gradients on its shard', async () => {
    const child = run('sparsify-launch', ['--nproc_per_node', '2', modelDir, bin, ...common, '--batch_size', String(B), '--run_name', 'ddp', '--lr', '0.003']);
    const { code } = await exited(child);
    expect([code, child.output()]).toEqual([0, expect.stringContaining('torch.distributed: 2 ranks, gloo backend, data parallel')]);
    expect(child.output()).toContain('Done: 7 steps.'); // 25 rows per rank in batches of 4
    const rel = await py<number>(
      `import pathlib, numpy as np
from transformers import AutoModel
import importlib.util
spec = importlib.util.spec_from_file_location("reference_trainer", helper)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
ns = vars(mod)
model = AutoModel.from_pretrained(model_dir).eval()
rows = torch.from_numpy(np.fromfile(bin, dtype=np.uint16).astype(np.int64).reshape(-1, ctx))
want = ns["train_ddp_emulation"](model, rows, ["layers.0", "layers.1"], world=2, k=4, num_latents=64, batch_size=b, lr=0.003)
from safetensors.torch import load_file
worst = 0.0
for h, params in want.items():
  got = load_file(f"{run}/{h}/sae.safetensors")
  for n, t in params.items(): worst = max(worst, (got[n] - t).abs().max().item() / (t.abs().max().item() + 1e-12))
result = worst`,
      { helper: join(repoRoot, 'test', 'helpers', 'reference_trainer.py'), model_dir: modelDir, bin, ctx: CTX, b: B, run: join(work, 'ddp') },
    );
    expect(rel).toBeLessThan(1e-4);
    // Only rank 0 saved the shared coders and state.
    expect(readdirSync(join(work, 'ddp')).sort()).toEqual(['checkpoint.json', 'config.json', 'layers.0', 'layers.1', 'metrics.jsonl', 'state.json', 'state.safetensors']);
  });

  it('--distribute_modules trains each hookpoint on exactly one rank, matching one process on the gathered batches', async () => {
    const child = run('sparsify-launch', ['--nproc_per_node', '2', modelDir, bin, ...common, '--batch_size', String(B), '--run_name', 'dm', '--distribute_modules']);
    const { code } = await exited(child);
    expect([code, child.output()]).toEqual([0, expect.stringContaining('hookpoints distributed across ranks')]);
    const s0 = JSON.parse(readFileSync(join(work, 'dm', 'state-rank0.json'), 'utf8')) as { coders: Record<string, unknown> };
    const s1 = JSON.parse(readFileSync(join(work, 'dm', 'state-rank1.json'), 'utf8')) as { coders: Record<string, unknown> };
    expect(Object.keys(s0.coders)).toEqual(['layers.0']);
    expect(Object.keys(s1.coders)).toEqual(['layers.1']);
    const single = run('sparsify', [modelDir, binInterleaved, ...common, '--batch_size', String(2 * B), '--run_name', 'single', '--max_examples', String(ROWS)]);
    expect((await exited(single)).code).toBe(0);
    expect(await compare(join(work, 'dm'), join(work, 'single'), ['layers.0', 'layers.1'])).toBeLessThan(1e-5);
  });

  it('--distribute_modules spreads a sweep\'s configurations like hookpoints, matching one process on the gathered batches', async () => {
    const sweep = ['--hookpoints', 'layers.1', '--sweep', 'k=4,8'];
    const child = run('sparsify-launch', ['--nproc_per_node', '2', modelDir, bin, ...common, ...sweep, '--batch_size', String(B), '--run_name', 'dm-sweep', '--distribute_modules']);
    const { code } = await exited(child);
    expect([code, child.output()]).toEqual([0, expect.stringContaining('Rank 0 trains layers.1/k4')]);
    const s0 = JSON.parse(readFileSync(join(work, 'dm-sweep', 'state-rank0.json'), 'utf8')) as { coders: Record<string, unknown> };
    expect(Object.keys(s0.coders)).toEqual(['layers.1/k4']);
    const single = run('sparsify', [modelDir, binInterleaved, ...common, ...sweep, '--batch_size', String(2 * B), '--run_name', 'single-sweep', '--max_examples', String(ROWS)]);
    expect((await exited(single)).code).toBe(0);
    expect(await compare(join(work, 'dm-sweep'), join(work, 'single-sweep'), ['layers.1/k4', 'layers.1/k8'])).toBeLessThan(1e-5);
  });

  it('from an activation cache, data parallel and --distribute_modules (each rank reading every rank\'s rows) give the online runs\' coders', async () => {
    const cache = run('sparsify', ['cache', modelDir, bin, '--ctx_len', String(CTX), '--out', 'acts', '--shard_mb', '0.05']);
    expect([(await exited(cache)).code, cache.output()]).toEqual([0, expect.stringContaining('Done: 800 tokens')]);
    const ddp = run('sparsify-launch', ['--nproc_per_node', '2', '--from_cache', 'acts', ...common, '--batch_size', String(B), '--run_name', 'ddp-cache', '--lr', '0.003']);
    expect([(await exited(ddp)).code, ddp.output()]).toEqual([0, expect.stringContaining('Done: 7 steps.')]);
    expect(await compare(join(work, 'ddp-cache'), join(work, 'ddp'), ['layers.0', 'layers.1'])).toBe(0);
    const dm = run('sparsify-launch', ['--nproc_per_node', '2', '--from_cache', 'acts', ...common, '--batch_size', String(B), '--run_name', 'dm-cache', '--distribute_modules']);
    expect([(await exited(dm)).code, dm.output()]).toEqual([0, expect.stringContaining('Done: 7 steps.')]);
    expect(await compare(join(work, 'dm-cache'), join(work, 'dm'), ['layers.0', 'layers.1'])).toBe(0);
  });

  it('--distribute_modules with hookpoints that do not divide across ranks is a clear error', async () => {
    const child = run('sparsify-launch', ['--nproc_per_node', '2', modelDir, bin, ...common, '--run_name', 'bad', '--distribute_modules', '--hookpoints', 'layers.0', 'layers.1', 'layers.1.mlp']);
    const { code } = await exited(child);
    expect(code).not.toBe(0);
    expect(child.output()).toMatch(/distribute_modules: 3 hookpoints do not divide evenly across 2 ranks/);
    expect(child.output()).toMatch(/sparsify-launch: rank \d \(local rank \d.*\) exited with code 1/);
  });

  it('a rank that dies brings the run down within 60 s, naming the rank', async () => {
    const child = run('sparsify-launch', ['--nproc_per_node', '2', modelDir, join(repoRoot, 'assets', 'default', 'corpus', 'moby-dick-101-135.jsonl'), ...common, '--batch_size', '1', '--run_name', 'victim-run']);
    // Find rank 1's Node process by its environment once training runs.
    let victim: number | undefined;
    const until = Date.now() + 90_000;
    while (!victim && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 500));
      if (!child.output().includes('step 1/')) continue;
      victim = rankPid('victim-run', 1);
    }
    expect(victim).toBeDefined();
    const t0 = Date.now();
    process.kill(victim!, 'SIGKILL');
    const { code } = await exited(child);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(code).not.toBe(0);
    expect(child.output()).toMatch(/sparsify-launch: rank 1 \(local rank 1.*\) was killed by signal 9/);
    // The last checkpoint, if one was written, is still whole.
    if (existsSync(join(work, 'victim-run', 'state.json'))) expect(existsSync(join(work, 'victim-run', '.saving'))).toBe(false);
  });
});
