/**
 * The GPU benchmark (`npm run bench:gpu` prepares it; it runs on a GPU machine without
 * network or Node): a pythia-160m-shaped GPT-NeoX (hidden 768, 12 layers, random weights), ctx
 * 2048, batch 8, SAEs on every layer (expansion 32, k 32, signum), trained by this project and
 * by the reference library on the same model and tokens, one after the other on the same GPU;
 * then per-op timings at the same shapes; each of this project's weight-gradient kernels
 * (index_add, gemm, and the Triton segment kernels on CUDA). Prints
 * `tokens/s project X, reference Y, ratio R; fvu per layer ...; peak memory ...`.
 * BENCH_GPU_TINY=1 runs the same on a tiny model on the CPU (the dry run).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeRuntime, getRuntime } from '../bridge/runtime.js';
import { benchOp } from '../bridge/ops.js';
import { makeBenchModel } from './fixture.js';
import { useBenchRuntime } from './runtime.js';
import { fvuByHookpoint, meanOfLast, trainReference } from './reference.js';
import { loadDataset, type TokenDataset } from '../data/dataset.js';
import { loadModel, type LanguageModel } from '../model/language-model.js';
import { Trainer } from '../trainer/trainer.js';
import type { SparseBackward } from '../math/sparse-grads.js';

const tiny = process.env.BENCH_GPU_TINY === '1';
const SHAPE = tiny
  ? { hidden: 64, layers: 2, heads: 4, inter: 256, vocab: 512, ctx: 64, batch: 2, expansion: 4, k: 8, warmup: 2, steps: 3 }
  : { hidden: 768, layers: 12, heads: 12, inter: 3072, vocab: 50304, ctx: 2048, batch: 8, expansion: 32, k: 32, warmup: 5, steps: Number(process.env.BENCH_GPU_STEPS ?? 40) };

async function main(): Promise<void> {
  useBenchRuntime(); // the bench ops, to build the model, profile and read memory
  const work = mkdtempSync(join(tmpdir(), 'sparsify-bench-gpu-'));
  const s = SHAPE;
  try {
    const rt = await getRuntime();
    const device = rt.info.cuda ? 'cuda' : 'cpu';
    const versions = await benchOp('bench.versions', {});
    console.log(`bench:gpu on ${versions}`);
    const t0 = performance.now();
    const phase = (what: string): void => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${what}`);
    const rows = (s.warmup + s.steps) * s.batch;
    const { modelDir, bin } = await makeBenchModel(work, s.ctx, rows, { hidden: s.hidden, layers: s.layers, heads: s.heads, inter: s.inter, vocab: s.vocab });

    phase('model and tokens made');
    // This project: the reference's kernels, then the gemm weight gradients (the CUDA default).
    const model = await loadModel(modelDir, { kind: 'base', device });
    const data = await loadDataset(bin, { ctxLen: s.ctx });
    const runs: ProjectRun[] = [];
    // A failure of one part is printed and the others still run: a GPU run is precious.
    // segment: the Triton kernels (on CPU only under TRITON_INTERPRET=1, for the dry run).
    const kernels: SparseBackward[] = ['index_add', 'gemm', ...(device === 'cuda' || process.env.TRITON_INTERPRET ? (['segment'] as const) : [])];
    for (const sparseBackward of kernels) {
      try {
        runs.push(await trainProject(model, data, work, sparseBackward));
      } catch (err) {
        console.log(`project (--sparse_backward ${sparseBackward}) failed: ${String(err)}`);
      }
    }
    // Where the gemm run's GPU time goes: a few steps under torch.profiler, by kernel.
    if (process.env.BENCH_GPU_PROFILE !== '0') {
      try {
        const short = await loadDataset(bin, { ctxLen: s.ctx, maxExamples: 4 * s.batch });
        await benchOp('bench.profile_start', {});
        await trainProject(model, short, work, 'gemm', 'profiled');
        const table = await benchOp('bench.profile_stop', { trace: process.env.BENCH_GPU_TRACE ?? null });
        console.log(`profile of 4 steps (--sparse_backward gemm), by GPU time:\n${table}`);
        if (process.env.BENCH_GPU_TRACE) console.log(`trace of those steps (Chrome trace format, gzip): ${process.env.BENCH_GPU_TRACE}`);
      } catch (err) {
        console.log(`profile failed: ${String(err)}`);
      }
    }
    // Per-op timings at the same shapes.
    const ops = await benchOp('bench.time_ops', { model: model.model, tokens: s.batch * s.ctx, d: s.hidden, m: s.hidden * s.expansion, k: s.k, batch: s.batch, ctx: s.ctx, device }    ).catch((err: unknown) => {
      console.log(`per-op timings failed: ${String(err)}`);
      return {} as Record<string, number>;
    });
    phase('project runs and per-op timings done');
    closeRuntime(); // frees the GPU for the reference

    // The reference, in its own process, on the same model and tokens.
    const ref = await trainReference({ modelDir, bin, ctx: s.ctx, batch: s.batch, warmup: s.warmup, steps: s.steps, expansion: s.expansion, k: s.k, fvuSteps: FVU_STEPS, out: join(work, 'reference.json') });
    phase('reference run done');

    console.log(`per-op (one coder, median ms; x${s.layers} coders per step): ${Object.entries(ops).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
    const gib = (v: number | null): string => (v === null ? '-' : `${v.toFixed(1)} GiB`);
    for (const r of runs) {
      const layersFvu = Object.keys(r.fvu).map((h) => `${h} ${r.fvu[h]!.toFixed(4)}/${(ref.fvu[h] ?? NaN).toFixed(4)} (${(((r.fvu[h]! - (ref.fvu[h] ?? NaN)) / (ref.fvu[h] ?? NaN)) * 100).toFixed(2)}%)`);
      console.log(`[--sparse_backward ${r.sparseBackward}] project step ${r.stepMs.toFixed(1)} ms, of which outside Python compute (bridge wait, TS) ${r.bridgeMs.toFixed(1)} ms`);
      console.log(
        `[--sparse_backward ${r.sparseBackward}] tokens/s project ${Math.round(r.tokensPerSecond)}, reference ${Math.round(ref.tokens_per_second)}, ratio ${(r.tokensPerSecond / ref.tokens_per_second).toFixed(3)}; fvu per layer (project/reference, mean of the last ${FVU_STEPS} steps) ${layersFvu.join(', ')}; peak memory project ${gib(r.peakGiB)}, reference ${gib(ref.peak_memory_gib)}`,
      );
    }
  } finally {
    closeRuntime();
    rmSync(work, { recursive: true, force: true });
  }
}

/** fvu is compared as the mean over the last steps (the same batches in both libraries). */
const FVU_STEPS = 10;

interface ProjectRun {
  sparseBackward: SparseBackward;
  tokensPerSecond: number;
  stepMs: number;
  bridgeMs: number;
  fvu: Record<string, number>;
  peakGiB: number | null;
}

/** One timed training run of this project (warm-up steps, then the timed steps). */
async function trainProject(model: LanguageModel, data: TokenDataset, work: string, sparseBackward: SparseBackward, label = ''): Promise<ProjectRun> {
  const s = SHAPE;
  const cuda = model.device.startsWith('cuda');
  if (cuda) await benchOp('bench.cuda_reset_peak', {});
  const times: number[] = [];
  let compute = 0;
  const fvus: Record<string, number>[] = [];
  const trainer = new Trainer(
    { sae: { expansionFactor: s.expansion, k: s.k }, batchSize: s.batch, optimizer: 'signum', sparseBackward, logToWandb: false, saveEvery: 1_000_000, saveDir: work, runName: `project-${sparseBackward}${label}` },
    data,
    model,
    {
      log: () => undefined,
      onStep: (r) => {
        times.push(performance.now());
        if (r.step > s.warmup) compute += r.computeSeconds;
        fvus.push(fvuByHookpoint(r));
      },
    },
  );
  await trainer.fit();
  const fvu = meanOfLast(fvus, FVU_STEPS);
  const timed = times.length - s.warmup;
  const wall = (times[times.length - 1]! - times[Math.min(s.warmup, times.length) - 1]!) / 1000;
  const stepMs = (wall / Math.max(timed, 1)) * 1000;
  const peakGiB = cuda ? await benchOp('bench.cuda_peak_gib', {}) : null;
  const run = { sparseBackward, tokensPerSecond: (timed * s.batch * s.ctx) / wall, stepMs, bridgeMs: stepMs - (compute / Math.max(timed, 1)) * 1000, fvu, peakGiB };
  // A profiled run is too short (and too slowed) to time.
  if (!label) console.log(`project (--sparse_backward ${sparseBackward}): ${Math.round(run.tokensPerSecond)} tokens/s, ${stepMs.toFixed(1)} ms/step`);
  return run;
}

await main();
