// Two nodes over a real network: two network namespaces joined by a veth pair, each with its
// own hostname and /etc/hosts (here every hostname resolves to 127.0.0.1), one
// `sparsify-launch --nnodes 2 --nproc_per_node 1 --rdzv_backend c10d` in each. The coders
// equal a single-host 2-rank run's bit for bit (data parallel and --distribute_modules), and
// a rank killed on one node stops both within seconds, its node's launcher naming rank, host
// and signal. Only addresses inside the namespaces this test makes are used; they are removed
// even when a test fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime } from '../../src/bridge/index.js';
import { makeTinyLM } from '../helpers/python.js';
import { exited, repoRoot } from '../helpers/processes.js';
import { compareCoders, rankPid, runBin, writeRankRows } from '../helpers/launch.js';

const ID = process.pid % 100_000;
const SUBNET = `10.201.${ID % 250}`;
const NODES = [0, 1].map((n) => ({ ns: `sptest${ID}n${n}`, veth: `spv${ID}n${n}`, host: `spnode${ID}n${n}`, addr: `${SUBNET}.${n + 1}` }));

let work: string;
let modelDir: string;
const CTX = 16;
const common = ['--ctx_len', String(CTX), '--expansion_factor', '2', '-k', '4', '--save_dir', '.', '--log_to_wandb', 'false', '--batch_size', '4'];

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

function removeNetwork(): void {
  for (const n of NODES) {
    try {
      ip('netns', 'del', n.ns); // takes its end of the veth pair, and so the pair, with it
    } catch {
      // not made, or gone
    }
    rmSync(`/etc/netns/${n.ns}`, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-two-node-'));
  modelDir = await makeTinyLM(join(work, 'lm'), { hidden: 32, layers: 2 });
  await writeRankRows({ path: join(work, 'tokens.bin'), interleaved: join(work, 'interleaved.bin'), rows: 48, ctx: CTX, batch: 4, vocab: 200 });
  closeRuntime();
  removeNetwork();
  try {
    const hosts = ['127.0.0.1 localhost', ...NODES.map((n) => `${n.addr} ${n.host}`)].join('\n');
    for (const n of NODES) {
      ip('netns', 'add', n.ns);
      // `ip netns exec` mounts /etc/netns/NAME/hosts over /etc/hosts inside the namespace.
      mkdirSync(`/etc/netns/${n.ns}`, { recursive: true });
      writeFileSync(`/etc/netns/${n.ns}/hosts`, `${hosts}\n`);
    }
    ip('link', 'add', NODES[0]!.veth, 'type', 'veth', 'peer', 'name', NODES[1]!.veth);
    for (const n of NODES) {
      ip('link', 'set', n.veth, 'netns', n.ns);
      ip('-n', n.ns, 'addr', 'add', `${n.addr}/24`, 'dev', n.veth);
      ip('-n', n.ns, 'link', 'set', 'lo', 'up');
      ip('-n', n.ns, 'link', 'set', n.veth, 'up');
    }
  } catch (err) {
    removeNetwork();
    throw new Error(`two-node test: could not make the network namespaces (needs root and iproute2; .ci/run installs it): ${(err as Error).message}`);
  }
}, 120_000);
afterAll(() => {
  removeNetwork();
  rmSync(work, { recursive: true, force: true });
});

/** `sparsify-launch` on node `n` (in its namespace, under its hostname), meeting the other node at node 0's address. */
function onNode(n: number, job: string, args: string[]): ChildProcess & { output: () => string } {
  const node = NODES[n]!;
  const launcher = join(repoRoot, 'bin', 'sparsify-launch.js');
  const torchrun = ['--nnodes', '2', '--nproc_per_node', '1', '--rdzv_backend', 'c10d', '--rdzv_endpoint', `${NODES[0]!.addr}:29400`, '--rdzv_id', job];
  const child = spawn('ip', ['netns', 'exec', node.ns, 'unshare', '--uts', 'sh', '-c', `hostname ${node.host} && exec "$0" "$@"`, process.execPath, launcher, ...torchrun, ...args], {
    cwd: work,
    env: { ...process.env, WANDB_MODE: 'disabled' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  return Object.assign(child, { output: () => text });
}

async function twoNodes(job: string, args: string[]): Promise<string[]> {
  const nodes = [0, 1].map((n) => onNode(n, job, args));
  const codes = await Promise.all(nodes.map(exited));
  expect(codes.map((c) => c.code), nodes.map((c) => c.output()).join('\n----\n')).toEqual([0, 0]);
  return nodes.map((c) => c.output());
}

async function oneHost(name: string, args: string[]): Promise<void> {
  const run = runBin('sparsify-launch', ['--nproc_per_node', '2', modelDir, 'tokens.bin', ...common, ...args, '--run_name', name], work);
  expect([(await exited(run)).code, run.output()]).toEqual([0, expect.stringContaining('Done: 6 steps.')]);
}

describe('two nodes (network namespaces, c10d rendezvous, gloo)', () => {
  it('data parallel across the nodes trains the single-host 2-rank run\'s coders, bit for bit', async () => {
    const outputs = await twoNodes('dp', [modelDir, 'tokens.bin', ...common, '--run_name', 'two-dp']);
    expect(outputs.join('\n')).toContain('torch.distributed: 2 ranks, gloo backend, data parallel');
    await oneHost('one-dp', []);
    expect(await compareCoders(join(work, 'two-dp'), join(work, 'one-dp'), ['layers.0', 'layers.1'])).toBe(0);
  }, 240_000);

  it('--distribute_modules across the nodes: each node trains its hookpoint, as on one host', async () => {
    await twoNodes('dm', [modelDir, 'tokens.bin', ...common, '--distribute_modules', '--run_name', 'two-dm']);
    const owners = [0, 1].map((r) => Object.keys((JSON.parse(readFileSync(join(work, 'two-dm', `state-rank${r}.json`), 'utf8')) as { coders: object }).coders));
    expect(owners).toEqual([['layers.0'], ['layers.1']]);
    await oneHost('one-dm', ['--distribute_modules']);
    expect(await compareCoders(join(work, 'two-dm'), join(work, 'one-dm'), ['layers.0', 'layers.1'])).toBe(0);
  }, 240_000);

  it('a rank killed on one node stops both nodes within seconds; that node\'s launcher names the rank, its host and the signal', async () => {
    const args = [modelDir, join(repoRoot, 'assets', 'default', 'corpus', 'moby-dick-101-135.jsonl'), ...common, '--batch_size', '1', '--run_name', 'two-victim'];
    const nodes = [0, 1].map((n) => onNode(n, 'victim', args));
    const until = Date.now() + 120_000;
    let victim: number | undefined;
    while (!victim && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 300));
      if (!nodes[0]!.output().includes('step 1/')) continue;
      // Rank 1's worker, wherever the rendezvous put it.
      victim = rankPid('two-victim', 1);
    }
    expect(victim).toBeDefined();
    const host = readFileSync(`/proc/${victim}/environ`, 'utf8').split('\0').includes(`GROUP_RANK=0`) ? NODES[0]!.host : NODES[1]!.host;
    const t0 = Date.now();
    process.kill(victim!, 'SIGKILL');
    const codes = await Promise.all(nodes.map(exited));
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(codes.map((c) => c.code === 0)).toEqual([false, false]);
    expect(nodes.map((c) => c.output()).join('\n')).toContain(`sparsify-launch: rank 1 (local rank 0 on ${host}) was killed by signal 9`);
  }, 240_000);
});
