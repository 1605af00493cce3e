/**
 * A cross-layer transcoder's training step against per-layer transcoders on the same
 * activations: forward (encode every layer, decode every target), the summed fvu, backward,
 * each as one program (one bridge call), interleaved after warm-up. By default the bundled
 * model's shape: 4 layers of D = 128, 4,096 latents per layer, k = 32, 2,048 tokens.
 */
import { benchOp, type Tensor } from '../bridge/ops.js';
import { In, defineProgram, runProgram, type InputSpec, type SymTensor } from '../kernels/index.js';
import { crossLayerForward } from '../math/cross-layer.js';
import * as sc from '../math/sparse-coder.js';
import { paramNames, structureOf, type CoderParamName, type CoderParams } from '../math/structure.js';
import { CrossLayerTranscoder } from '../coder/cross-layer.js';
import { SparseCoder } from '../coder/sparse-coder.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

export async function benchCrossLayer(): Promise<void> {
  const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
  const [layers, n, d, m, k] = [env('BENCH_CLT_LAYERS', 4), env('BENCH_CLT_TOKENS', 2048), 128, env('BENCH_CLT_LATENTS', 4096), 32];
  const iters = env('BENCH_ITERS', 8);
  const names = range(layers).map((i) => `layers.${i}.mlp`);
  const clt = await CrossLayerTranscoder.create(d, names, { k, numLatents: m }, { seed: 0 });
  const tcs = await Promise.all(names.map((_, i) => SparseCoder.create(d, { k, numLatents: m, transcode: true }, { seed: i })));
  const xs = (await Promise.all(names.map(() => benchOp('bench.randn', { n, d })))) as Tensor[];
  const ys = (await Promise.all(names.map(() => benchOp('bench.randn', { n, d })))) as Tensor[];
  const s = structureOf(clt.cfg);
  const sig = (prefix: string, spec: () => InputSpec): Record<string, InputSpec> => Object.fromEntries(names.map((_, i) => [`${prefix}${i}`, spec()]));
  const signature = { ...sig('p', () => In.bundle<CoderParamName>()), ...sig('x', () => In.tensor()), ...sig('y', () => In.tensor()) };
  const read = (io: Record<string, unknown>, prefix: string): unknown[] => names.map((_, i) => io[`${prefix}${i}`]);
  const clear = (ps: CoderParams[]): void => ps.forEach((p) => paramNames(s).forEach((name) => p.get(name).clearGrad()));
  const cltStep = defineProgram(
    `bench_clt_step_${layers}`,
    signature,
    (g, io) => {
      const ps = read(io, 'p') as CoderParams[];
      const out = crossLayerForward(g, ps, read(io, 'x') as SymTensor[], read(io, 'y') as SymTensor[], [], k, s);
      const loss = out.fvu.slice(1).reduce((a, b) => a.add(b), out.fvu[0]!);
      loss.backward();
      clear(ps);
      return { loss: loss.item() };
    },
    { grad: true },
  );
  const perLayerStep = defineProgram(
    `bench_tc_steps_${layers}`,
    signature,
    (g, io) => {
      const ps = read(io, 'p') as CoderParams[];
      const ys = read(io, 'y') as SymTensor[];
      const fvus = (read(io, 'x') as SymTensor[]).map((x, i) => sc.forward(g, ps[i]!, x, ys[i]!, undefined, k, s).fvu);
      const loss = fvus.slice(1).reduce((a, b) => a.add(b), fvus[0]!);
      loss.backward();
      clear(ps);
      return { loss: loss.item() };
    },
    { grad: true },
  );
  const args = (ps: readonly unknown[]): Record<string, unknown> => ({ ...Object.fromEntries(ps.map((p, i) => [`p${i}`, p])), ...Object.fromEntries(xs.map((x, i) => [`x${i}`, x])), ...Object.fromEntries(ys.map((y, i) => [`y${i}`, y])) });
  const time = async (run: () => Promise<unknown>): Promise<number> => {
    const t0 = performance.now();
    await run();
    return performance.now() - t0;
  };
  const cltRun = (): Promise<number> => time(() => runProgram(cltStep, args(clt.sources) as never));
  const tcRun = (): Promise<number> => time(() => runProgram(perLayerStep, args(tcs.map((t) => t.params)) as never));
  const cltMs: number[] = [];
  const tcMs: number[] = [];
  for (let i = 0; i < 2 + iters; i++) {
    const pair = i % 2 === 0 ? [await cltRun(), await tcRun()] : [await tcRun(), await cltRun()].reverse();
    if (i >= 2) {
      cltMs.push(pair[0]!);
      tcMs.push(pair[1]!);
    }
  }
  const [a, b] = [median(cltMs), median(tcMs)];
  console.log(`cross-layer transcoder step, ${layers} layers, N=${n} D=${d} M=${m} k=${k} (median of ${iters}):`);
  console.log(`  CLT (${layers} encoders, ${(layers * (layers + 1)) / 2} decoders): ${a.toFixed(1)} ms; ${layers} per-layer transcoders: ${b.toFixed(1)} ms; ratio CLT/per-layer ${(a / b).toFixed(3)}`);
}
