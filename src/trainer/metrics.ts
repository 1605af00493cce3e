/**
 * Training metrics: sums from each step's reply averaged the way the reference reports them
 * (losses per batch and micro-batch chunk, dead_pct per optimizer step), written one JSON line
 * per logged step to metrics.jsonl (and to wandb when it runs).
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { wandbLog } from '../bridge/ops.js';
import type { EvalReport } from '../eval/report.js';
import type { CrossLayerEvalReport } from '../eval/cross-layer.js';
import { LOGGED_METRICS } from '../eval/metrics/index.js';

/** What a step reports for a coder (and, under the loss's own key, for an end-to-end loss). */
export interface CoderMetrics {
  /** Fraction of variance unexplained, per batch (and micro-batch chunk). */
  fvu?: number;
  /** The AuxK loss (reported when auxk_alpha > 0). */
  auxk?: number;
  /** The Multi-TopK fvu (reported with multi_topk). */
  multi_topk_fvu?: number;
  /** The L0 estimate and its loss, of an activation trained towards an L0 (jumprelu). */
  l0?: number;
  sparsity_loss?: number;
  /** The Matryoshka loss (weighted prefix fvus), with matryoshka_prefixes. */
  matryoshka_loss?: number;
  /** Share of latents counted dead, per optimizer step. */
  dead_pct?: number;
  /** The end-to-end losses, under the keys 'ce' and 'kl'. */
  ce?: number;
  kl?: number;
}

/** Metric values by key (a coder's name, or the end-to-end loss) and metric. */
export type MetricTable = Record<string, CoderMetrics>;

/** Metrics the fvu hook sums once per micro-batch chunk. */
const CHUNKED_METRICS = new Set(['fvu', 'auxk', 'multi_topk_fvu', 'l0', 'sparsity_loss', 'matryoshka_loss']);

/** Sums of metric tables over some batches. */
export class MetricSums {
  private readonly sums = new Map<string, Record<string, number>>();
  batches = 0;

  add(table: Record<string, Record<string, number>>): void {
    for (const [key, values] of Object.entries(table)) {
      const slot = this.sums.get(key) ?? {};
      for (const [m, v] of Object.entries(values)) slot[m] = (slot[m] ?? 0) + v;
      this.sums.set(key, slot);
    }
  }

  /**
   * The averages: losses per batch (and per chunk where the hook sums chunks), dead_pct per
   * optimizer step.
   */
  averages(gradAccSteps: number, microChunks: number): MetricTable {
    const out: MetricTable = {};
    const steps = Math.max(1, Math.ceil(this.batches / gradAccSteps));
    for (const [key, values] of this.sums) {
      const avg: Record<string, number> = {};
      for (const [m, v] of Object.entries(values)) {
        avg[m] = m === 'dead_pct' ? v / steps : v / (this.batches * (CHUNKED_METRICS.has(m) ? microChunks : 1));
      }
      out[key] = avg;
    }
    return out;
  }

  clear(): void {
    this.sums.clear();
    this.batches = 0;
  }
}

/** The mean loss of each coder since the last save (what save_best compares). */
export class LossWindow {
  private readonly acc = new Map<string, { loss: number; n: number }>();

  add(name: string, loss: number): void {
    const a = this.acc.get(name) ?? { loss: 0, n: 0 };
    a.loss += loss;
    a.n += 1;
    this.acc.set(name, a);
  }

  /** The mean, or undefined when nothing was added. */
  mean(name: string): number | undefined {
    const a = this.acc.get(name);
    return a && a.n > 0 ? a.loss / a.n : undefined;
  }

  clear(): void {
    this.acc.clear();
  }
}

/** An evaluation's logged metrics as log entries: `eval/<metric>/<coder>` (and `eval/<metric>/all`). */
export function evalLogEntries(report: EvalReport): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, c] of Object.entries(report.coders)) {
    for (const m of LOGGED_METRICS) {
      const v = m.kind === 'coder' ? (c as Record<string, unknown>)[m.name] : (c.splice as Record<string, number> | null)?.[m.name];
      if (typeof v === 'number') out[`eval/${m.name}/${name}`] = v;
    }
  }
  for (const m of LOGGED_METRICS) {
    const v = m.kind === 'splice' ? (report.splice_all as Record<string, number> | null)?.[m.name] : undefined;
    if (v !== undefined) out[`eval/${m.name}/all`] = v;
  }
  return out;
}

/**
 * Cross-layer transcoders' evaluations as log entries: `eval/<metric>/<slot>` per target (the
 * slot's name: its layer, under its configuration in a sweep) and `eval/<metric>/all` (or
 * `<configuration>/all`) for the replacement model.
 */
export function crossLayerEvalLogEntries(reports: Readonly<Record<string, CrossLayerEvalReport>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [dir, report] of Object.entries(reports)) {
    const at = (name: string): string => (dir ? `${dir}/${name}` : name);
    for (const [layer, t] of Object.entries(report.targets)) {
      for (const m of LOGGED_METRICS) {
        const v = m.kind === 'coder' ? t.metrics[m.name] : t.splice?.[m.name];
        if (typeof v === 'number') out[`eval/${m.name}/${at(layer)}`] = v;
      }
    }
    for (const m of LOGGED_METRICS) {
      const v = m.kind === 'splice' ? report.replacement?.[m.name] : undefined;
      if (v !== undefined) out[`eval/${m.name}/${at('all')}`] = v;
    }
  }
  return out;
}

/** Where a logged step goes. */
export interface MetricsSink {
  runDir: string;
  /** The end-to-end loss key (ce, kl), whose metrics are logged without a suffix. */
  lossKey: string | null;
  /** Leave out metrics that are always 0 in this run. */
  omit: ReadonlySet<string>;
  /** Also log to wandb. */
  wandb: boolean;
}

/** Append one logged step to metrics.jsonl (`fvu/layers.0`, ...), and to wandb. */
export async function writeMetricsLine(
  sink: MetricsSink,
  at: { step: number; optimizerStep: number; tokens: number; k?: number; ks?: Record<string, number> },
  metrics: MetricTable,
  extra: Record<string, number> = {},
): Promise<void> {
  // One k, or each coder's (`k/<name>`) when a sweep's configurations have different ones.
  const k = at.k !== undefined ? { k: at.k } : Object.fromEntries(Object.entries(at.ks ?? {}).map(([name, v]) => [`k/${name}`, v]));
  const line: Record<string, unknown> = { step: at.step, optimizer_step: at.optimizerStep, tokens: at.tokens, ...k, time: new Date().toISOString() };
  for (const [key, values] of Object.entries(metrics)) {
    for (const [m, v] of Object.entries(values) as [string, number][]) {
      if (sink.omit.has(m)) continue;
      line[key === sink.lossKey ? m : `${m}/${key}`] = v;
    }
  }
  Object.assign(line, extra);
  await mkdir(sink.runDir, { recursive: true });
  await appendFile(join(sink.runDir, 'metrics.jsonl'), `${JSON.stringify(line)}\n`);
  if (sink.wandb) await wandbLog(line, at.optimizerStep);
}

/**
 * A run's metric bookkeeping over its steps: the sums since the last logged step (the logged
 * averages), and each coder's mean loss since the last save (what save_best compares).
 */
export class TrainingMetrics {
  private readonly period = new MetricSums();
  readonly sinceSave = new LossWindow();

  constructor(
    private readonly gradAccSteps: number,
    /** Chunks each batch's coder forward is split into (fvu training). */
    private readonly microChunks: number,
    /** An end-to-end run's loss key (ce, kl), whose value is every coder's loss; null for fvu. */
    private readonly lossKey: string | null,
  ) {}

  /**
   * Add one step's replies over `batches` batches; with `optimizerStep`, each coder's loss of
   * this step joins its window. Returns the averages since the last logged step.
   */
  add(replies: readonly { metrics: Record<string, Record<string, number>> }[], batches: number, coders: readonly string[], optimizerStep: boolean): MetricTable {
    const step = new MetricSums();
    step.batches = batches;
    this.period.batches += batches;
    for (const r of replies) {
      step.add(r.metrics);
      this.period.add(r.metrics);
    }
    if (optimizerStep) {
      const averages = step.averages(this.gradAccSteps, this.microChunks);
      for (const name of coders) {
        const loss = this.lossKey ? averages[this.lossKey]?.[this.lossKey as 'ce' | 'kl'] : averages[name]?.fvu;
        if (loss !== undefined) this.sinceSave.add(name, loss);
      }
    }
    return this.period.averages(this.gradAccSteps, this.microChunks);
  }

  /** Start a new period (after a logged step). */
  logged(): void {
    this.period.clear();
  }
}

/** The k logged with each metrics line: one k, or each coder's when a sweep's differ. */
export function kEntries(slots: readonly { name: string; k: number }[], k: number): { k: number } | { ks: Record<string, number> } {
  const ks = new Set(slots.map((s) => s.k));
  return ks.size <= 1 ? { k } : { ks: Object.fromEntries(slots.map((s) => [s.name, s.k])) };
}
