/**
 * `sparsify-launch [torchrun options] [MODEL] [DATASET] [sparsify options]`: one `sparsify`
 * Node process per rank, started by the real torchrun (`--no-python`), so multi-node runs
 * use torchrun's own rendezvous. Each rank's Python runtime then joins torch.distributed
 * from torchrun's environment (NCCL on GPU, gloo on CPU).
 */
import { execa } from 'execa';
import { join } from 'node:path';
import { choosePython } from '../bridge/runtime.js';
import { packageRoot } from '../bridge/paths.js';

/** The torchrun options sparsify-launch takes (spelled with underscores or dashes), and what each is. */
const TORCHRUN_OPTIONS: Record<string, { value: string | null; about: string }> = {
  nproc_per_node: { value: 'N', about: 'ranks on this node: a number, or gpu (one per GPU) (default: 1)' },
  nnodes: { value: 'N', about: 'nodes, or MIN:MAX for an elastic range' },
  node_rank: { value: 'N', about: "this node's rank (static rendezvous)" },
  rdzv_backend: { value: 'NAME', about: 'rendezvous backend: c10d, static, ...' },
  rdzv_endpoint: { value: 'HOST:PORT', about: 'rendezvous address' },
  rdzv_id: { value: 'ID', about: "the job's id, the same on every node" },
  rdzv_conf: { value: 'K=V,...', about: 'rendezvous settings' },
  master_addr: { value: 'HOST', about: "rank 0's address (static rendezvous)" },
  master_port: { value: 'PORT', about: "rank 0's port (static rendezvous)" },
  max_restarts: { value: 'N', about: 'restarts of the workers before the job fails' },
  monitor_interval: { value: 'SECONDS', about: 'how often torchrun checks its workers' },
  local_addr: { value: 'HOST', about: "this node's address" },
  log_dir: { value: 'DIR', about: "where torchrun writes the workers' logs" },
  redirects: { value: 'N', about: "redirect the workers' output streams into log_dir" },
  tee: { value: 'N', about: "copy the workers' output streams into log_dir" },
  role: { value: 'NAME', about: 'the workers\' role name' },
  standalone: { value: null, about: 'one node, a local rendezvous (the default without --nnodes or a rendezvous address)' },
};
const VALUE_FLAGS = new Set(Object.entries(TORCHRUN_OPTIONS).filter(([, o]) => o.value !== null).map(([n]) => n));
const BOOL_FLAGS = new Set(Object.entries(TORCHRUN_OPTIONS).filter(([, o]) => o.value === null).map(([n]) => n));

/** What `sparsify-launch --help` prints. */
export function launchHelp(): string {
  const rows = Object.entries(TORCHRUN_OPTIONS).map(([name, o]) => [`--${name}${o.value ? ` ${o.value}` : ''}`, o.about] as const);
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return [
    'Usage: sparsify-launch [torchrun options] [MODEL] [DATASET] [sparsify options]',
    '',
    'Start one `sparsify` per rank through PyTorch\'s torchrun (from the Python environment sparsify uses),',
    'so several GPUs and hosts train together (NCCL on GPUs, gloo on CPUs).',
    '',
    'torchrun options it takes:',
    ...rows.map(([flag, about]) => `  ${flag.padEnd(width)}  ${about}`),
    '',
    'Everything else goes to `sparsify` on every rank: see `sparsify --help`.',
  ].join('\n');
}

export interface LaunchPlan {
  torchrunArgs: string[];
  sparsifyArgs: string[];
}

/** Split argv into torchrun's options and the rest, which go to every rank's `sparsify`. */
export function splitArgs(argv: string[]): LaunchPlan {
  const torchrunArgs: string[] = [];
  const sparsifyArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([a-z_-]+)(?:=(.*))?$/.exec(arg);
    const name = m?.[1]?.replace(/-/g, '_');
    if (name && VALUE_FLAGS.has(name)) {
      const value = m![2] ?? argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
      torchrunArgs.push(`--${name}`, value);
    } else if (name && BOOL_FLAGS.has(name)) {
      torchrunArgs.push(`--${name}`);
    } else {
      sparsifyArgs.push(arg);
    }
  }
  return { torchrunArgs, sparsifyArgs };
}

interface RankFailure {
  rank: string;
  localRank: string;
  host?: string;
  exitcode?: number;
}

/**
 * From torchrun's failure report: which rank failed, and how. A rank killed by a signal
 * other than torchrun's own SIGTERM is the cause; ranks that then lost their peers follow.
 */
export function describeFailure(torchrunStderr: string): string | undefined {
  const failures: RankFailure[] = [];
  const re = /host\s*:\s*(\S+)\s*\n\s*rank\s*:\s*(\d+) \(local_rank: (\d+)\)\s*\n\s*exitcode\s*:\s*(-?\d+)/g;
  for (const m of torchrunStderr.matchAll(re)) {
    if (!failures.some((f) => f.rank === m[2])) failures.push({ host: m[1]!, rank: m[2]!, localRank: m[3]!, exitcode: Number(m[4]) });
  }
  if (failures.length === 0) return undefined;
  const killed = failures.find((f) => f.exitcode !== undefined && f.exitcode < 0 && f.exitcode !== -15);
  const root = killed ?? failures[failures.length - 1]!;
  const how = (f: RankFailure): string => (f.exitcode! < 0 ? `was killed by signal ${-f.exitcode!}` : `exited with code ${f.exitcode}`);
  const others = failures.filter((f) => f !== root).map((f) => `rank ${f.rank} ${how(f)}`);
  return `rank ${root.rank} (local rank ${root.localRank} on ${root.host}) ${how(root)}; torchrun stopped the run${others.length ? ` (then: ${others.join(', ')})` : ''}`;
}

/** Run the launch; resolves with the exit code. */
export async function launch(argv: string[] = process.argv.slice(2)): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${launchHelp()}\n`);
    return 0;
  }
  const { torchrunArgs, sparsifyArgs } = splitArgs(argv);
  if (!torchrunArgs.includes('--nproc_per_node')) torchrunArgs.push('--nproc_per_node', '1');
  if (!torchrunArgs.some((a) => a === '--standalone' || a === '--rdzv_endpoint' || a === '--master_addr' || a === '--nnodes')) torchrunArgs.push('--standalone');
  let python: string;
  try {
    python = choosePython();
  } catch (err) {
    process.stderr.write(`sparsify-launch: ${(err as Error).message}\n`);
    return 1;
  }
  const cli = join(packageRoot, 'bin', 'sparsify.js');
  const child = execa(python, ['-m', 'torch.distributed.run', ...torchrunArgs, '--no-python', process.execPath, cli, ...sparsifyArgs], {
    stdin: 'inherit',
    stdout: 'inherit',
    stderr: 'pipe',
    reject: false,
    // Restarted workers (--max_restarts) must not meet in the rendezvous' store of the attempt
    // before: torchrun shares it across restarts, and gloo's connectFullMesh then fails or
    // hangs (pytorch/pytorch#135712). A store per attempt avoids it.
    env: { TORCH_DISABLE_SHARE_RDZV_TCP_STORE: process.env.TORCH_DISABLE_SHARE_RDZV_TCP_STORE ?? '1' },
    // torchrun handles Ctrl-C for its workers; pass SIGTERM on.
    forceKillAfterDelay: 60_000,
  });
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => {
    process.stderr.write(d);
    tail = (tail + d.toString()).slice(-20_000);
  });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onTerm = forward('SIGTERM');
  const onInt = (): void => undefined; // the terminal already sent SIGINT to the whole group
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  const result = await child;
  process.off('SIGTERM', onTerm);
  process.off('SIGINT', onInt);
  const code = result.exitCode ?? 1;
  if (code !== 0) {
    const failure = describeFailure(tail);
    process.stderr.write(`sparsify-launch: ${failure ?? `torchrun exited with code ${code}`}\n`);
  }
  return code;
}
