/**
 * Benchmarks (`npm run bench`): the bridge's round-trip time, one SAE forward+backward through
 * the TS kernel path against the reference's own SparseCoder in Python, and training
 * throughput (train.ts), evaluation (eval.ts) and the latent cache (explore.ts) against their
 * parts, a sweep against separate runs (sweep.ts), training from an activation cache (cache.ts), and the
 * architectures' quality at equal L0 and step time (architectures.ts), and a cross-layer transcoder's step against
 * per-layer transcoders (cross-layer.ts). Measurements only: no test asserts on time.
 * The parts timed alone run in the benchmarks' own runtime ops (runtime.ts, python/bench/bench_ops.py).
 */
import { getRuntime, closeRuntime } from '../bridge/index.js';
import { benchOp, runtimeInfo, type PyObject, type Tensor } from '../bridge/ops.js';
import { In, defineProgram, runProgram } from '../kernels/index.js';
import * as sc from '../math/sparse-coder.js';
import { paramNames, type CoderParamName } from '../math/structure.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { benchTraining } from './train.js';
import { benchEval } from './eval.js';
import { benchExplore, benchExplorerPages } from './explore.js';
import { benchSweep } from './sweep.js';
import { benchCache } from './cache.js';
import { benchArchitectures } from './architectures.js';
import { benchCrossLayer } from './cross-layer.js';
import { referencePath } from './reference.js';
import { useBenchRuntime } from './runtime.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One training-style step: forward, fvu, backward, clear grads; returns the fvu. */
const SAE = { activation: 'topk', transcode: false, skipConnection: false, multiTopk: false, normalizeDecoder: true, inferenceThreshold: false } as const;
const trainStep = defineProgram(
  'bench_sae_step',
  { params: In.bundle<CoderParamName>(), x: In.tensor({ shape: ['N', 'D'] }), k: In.scalar() },
  (g, { params, x, k }) => {
    const out = sc.forward(g, params, x, x, undefined, k, SAE);
    out.fvu.backward();
    for (const name of paramNames(SAE)) params.get(name).clearGrad();
    return { fvu: out.fvu.item() };
  },
  { grad: true },
);

async function main(): Promise<void> {
  // The benchmark also times Python written by hand, and the reference's coder: the bench ops.
  useBenchRuntime();
  const rt = await getRuntime();
  console.log(`runtime: python ${rt.info.python}, torch ${rt.info.torch}, ${rt.info.cuda ? 'cuda' : 'cpu'}`);

  // 1. Bridge round trip.
  for (let i = 0; i < 50; i++) await runtimeInfo(rt);
  const rtts: number[] = [];
  for (let i = 0; i < 500; i++) {
    const t0 = performance.now();
    await runtimeInfo(rt);
    rtts.push(performance.now() - t0);
  }
  console.log(`bridge round trip: median ${(median(rtts) * 1000).toFixed(0)} us, mean ${((rtts.reduce((a, b) => a + b, 0) / rtts.length) * 1000).toFixed(0)} us (500 calls)`);

  // 2. SAE forward+backward, N=4096, D=256, M=8192, k=32, against the reference's own coder.
  const [n, d, m, k] = [4096, 256, 8192, 32];
  const warmup = 2;
  const iters = Number(process.env.BENCH_ITERS ?? 12);
  const coder = await SparseCoder.create(d, { k, numLatents: m }, { seed: 0 });
  const x = (await benchOp('bench.randn', { n, d })) as Tensor;
  const reference = referencePath() ? ((await benchOp('bench.reference_coder', { params: coder.params, k })) as PyObject) : null;
  const kernelTimes: number[] = [];
  const direct: number[] = [];
  // Interleaved after warm-up, alternating which goes first, so both see the same machine.
  const kernelRun = async (): Promise<number> => {
    const t0 = performance.now();
    await runProgram(trainStep, { params: coder.params, x, k });
    return performance.now() - t0;
  };
  const directRun = async (): Promise<number> => (reference ? benchOp('bench.reference_step_ms', { coder: reference, x }) : NaN);
  for (let i = 0; i < warmup + iters; i++) {
    let kernelMs: number;
    let directMs: number;
    if (i % 2 === 0) {
      kernelMs = await kernelRun();
      directMs = await directRun();
    } else {
      directMs = await directRun();
      kernelMs = await kernelRun();
    }
    if (i >= warmup) {
      kernelTimes.push(kernelMs);
      direct.push(directMs);
    }
  }
  const kernelMs = median(kernelTimes);
  console.log(`SAE forward+backward N=${n} D=${d} M=${m} k=${k} (cpu, median of ${iters}):`);
  console.log(`  kernel path (TS-authored, one bridge call): ${kernelMs.toFixed(1)} ms  (${((n / kernelMs) * 1000).toFixed(0)} tokens/s)`);
  if (reference) {
    const directMs = median(direct);
    console.log(`  the reference's SparseCoder in Python:       ${directMs.toFixed(1)} ms  (${((n / directMs) * 1000).toFixed(0)} tokens/s)`);
    console.log(`  ratio kernel/reference: ${(kernelMs / directMs).toFixed(3)} (target <= 1.10)`);
  } else {
    console.log('  (no reference here: set SPARSIFY_REFERENCE_PATH to compare with its SparseCoder)');
  }

  // 3. Training throughput and overhead.
  await benchTraining();

  // 4. Evaluation against its parts.
  await benchEval();

  // 5. The latent cache against one forward plus the encodes.
  await benchExplore();
  await benchExplorerPages();

  // 6. A sweep against separate runs.
  await benchSweep();

  // 7. Training from an activation cache.
  await benchCache();

  // 8. The architectures' quality at equal L0, and their step time.
  await benchArchitectures();

  // 9. A cross-layer transcoder's step against per-layer transcoders.
  await benchCrossLayer();
  closeRuntime();
}

await main();
