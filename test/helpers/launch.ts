// Running the CLIs as separate processes (torchrun's ranks among them), and the data and
// comparisons the distributed tests share.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { py } from './python.js';
import { repoRoot } from './processes.js';

/** A CLI as its own process in `cwd`, its stdout and stderr collected in `output()`. */
export function runBin(command: 'sparsify' | 'sparsify-launch', args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', `${command}.js`), ...args], { cwd, env: { ...process.env, WANDB_MODE: 'disabled', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  return Object.assign(child, { output: () => text });
}

/** The largest difference between two runs' coders `names` (each tensor's, relative to its largest entry; 0: bit for bit). */
export function compareCoders(dirA: string, dirB: string, names: string[]): Promise<number> {
  return py<number>(
    'from safetensors.torch import load_file\nworst = 0.0\nfor n in names:\n  a = load_file(f"{da}/{n}/sae.safetensors"); b = load_file(f"{db}/{n}/sae.safetensors")\n  assert set(a) == set(b), (n, sorted(a), sorted(b))\n  for k in a: worst = max(worst, (a[k] - b[k]).abs().max().item() / (b[k].abs().max().item() + 1e-12))\nresult = worst',
    { da: dirA, db: dirB, names },
  );
}

/**
 * Random token rows in a .bin (read in order, no shuffling), and the same rows ordered so
 * that one process with batch 2B sees exactly what two ranks gather: [rank 0's batch s,
 * rank 1's batch s] (each rank reads its half of the rows).
 */
export async function writeRankRows(options: { path: string; interleaved: string; rows: number; ctx: number; batch: number; vocab: number; seed?: number }): Promise<void> {
  await py(
    `import numpy as np
rng = np.random.default_rng(seed)
rows = rng.integers(0, vocab, size=(n, ctx), dtype=np.uint16)
rows.tofile(path)
half = n // 2
order = []
for s in range(0, half, b):
    order += list(range(s, min(s + b, half))) + list(range(half + s, half + min(s + b, half)))
rows[order].tofile(path2)`,
    { vocab: options.vocab, n: options.rows, ctx: options.ctx, path: options.path, path2: options.interleaved, b: options.batch, seed: options.seed ?? 0 },
  );
}

/** The PID of rank `rank`'s sparsify process of run `name` (its worker, not the launcher). */
export function rankPid(name: string, rank: number): number | undefined {
  let pids: number[];
  try {
    pids = execFileSync('pgrep', ['-f', '--', `--run_name ${name}`], { encoding: 'utf8' }).trim().split('\n').map(Number);
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (env.includes(`RANK=${rank}`) && cmd.includes('sparsify.js') && !cmd.includes('launch') && !cmd.includes('torch.distributed.run')) return pid;
    } catch {
      // gone already
    }
  }
  return undefined;
}

