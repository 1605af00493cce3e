/**
 * Benchmarks (`npm run bench`): the bridge's round-trip time, one SAE forward+backward through
 * the TS kernel path against the same torch code written directly in Python, and training
 * throughput (train.ts), evaluation (eval.ts) and the latent cache (explore.ts) against their
 * parts, a sweep against separate runs (sweep.ts), and training from an activation cache (cache.ts). Measurements only: no test asserts on time.
 */
import { join } from 'node:path';
import { getRuntime, closeRuntime, packageRoot } from '../bridge/index.js';
import { evalPython, runtimeInfo, type Tensor } from '../bridge/ops.js';
import { defineProgram, runProgram } from '../kernels/index.js';
import * as sc from '../math/sparse-coder.js';
import { paramNames, type CoderParamName } from '../math/structure.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { benchTraining } from './train.js';
import { benchEval } from './eval.js';
import { benchExplore, benchExplorerPages } from './explore.js';
import { benchSweep } from './sweep.js';
import { benchCache } from './cache.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One training-style step: forward, fvu, backward, clear grads; returns the fvu. */
const trainStep = defineProgram(
  'bench_sae_step',
  (g) => {
    const params = g.bundleInput<CoderParamName>('params');
    const x = g.input('x', { shape: ['N', 'D'] });
    const k = g.scalarInput('k');
    const out = sc.forward(g, params, x, x, undefined, k, { activation: 'topk', transcode: false, skipConnection: false, multiTopk: false, normalizeDecoder: true });
    out.fvu.backward();
    for (const name of paramNames({ skipConnection: false })) params.get(name).clearGrad();
    return { fvu: out.fvu.item() };
  },
  { grad: true },
);

async function main(): Promise<void> {
  // The benchmark also times Python written by hand, through the test ops: they are
  // registered when the runtime starts with this set.
  process.env.SPARSIFY_TESTING = '1';
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

  // 2. SAE forward+backward, N=4096, D=256, M=8192, k=32.
  const [n, d, m, k] = [4096, 256, 8192, 32];
  const warmup = 2;
  const iters = Number(process.env.BENCH_ITERS ?? 12);
  const coder = await SparseCoder.create(d, { k, numLatents: m }, { seed: 0 });
  const x = await evalPython<Tensor>('result = torch.randn(n, d, generator=torch.Generator().manual_seed(0))', { n, d });
  const directCode = 'import sys\nif bench_dir not in sys.path: sys.path.insert(0, bench_dir)\nimport reference_sae\nresult = [t * 1000 for t in reference_sae.time_steps(params, x, k, 0, 1)]';
  const directEnv = { bench_dir: join(packageRoot, 'python', 'bench'), params: coder.params, x, k };
  const kernelTimes: number[] = [];
  const direct: number[] = [];
  // Interleaved after warm-up, alternating which goes first, so both see the same machine.
  const kernelRun = async (): Promise<number> => {
    const t0 = performance.now();
    await runProgram(trainStep, { params: coder.params, x, k });
    return performance.now() - t0;
  };
  const directRun = async (): Promise<number> => (await evalPython<number[]>(directCode, directEnv))[0]!;
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
  const directMs = median(direct);
  console.log(`SAE forward+backward N=${n} D=${d} M=${m} k=${k} (cpu, median of ${iters}):`);
  console.log(`  kernel path (TS-authored, one bridge call): ${kernelMs.toFixed(1)} ms  (${((n / kernelMs) * 1000).toFixed(0)} tokens/s)`);
  console.log(`  same torch code directly in Python:         ${directMs.toFixed(1)} ms  (${((n / directMs) * 1000).toFixed(0)} tokens/s)`);
  console.log(`  ratio kernel/direct: ${(kernelMs / directMs).toFixed(3)} (target <= 1.10)`);

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
  closeRuntime();
}

await main();
