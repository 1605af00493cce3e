/** What a Trainer is given besides its config, data and model, and what it reports after each step. */
import type { EvalReport } from '../eval/report.js';
import type { CrossLayerEvalReport } from '../eval/cross-layer.js';
import type { TokenDataset } from '../data/dataset.js';
import type { MetricTable } from './metrics.js';

/** What the trainer reports after each optimizer step. */
export interface StepReport {
  /** Batches done. */
  step: number;
  totalSteps: number;
  optimizerStep: number;
  tokens: number;
  /** Per coder: averaged fvu (and auxk, multi_topk_fvu, dead_pct), plus ce/kl when end to end. */
  metrics: MetricTable;
  /** True when these metrics were logged (every wandb_log_frequency steps). */
  logged: boolean;
  k: number;
  /** Seconds the runtime computed for this step (the rest of its wall time is bridge and TS). */
  computeSeconds: number;
  /** The evaluation made after this step (every eval_every steps). */
  eval?: EvalReport;
  /** A cross-layer run's evaluation after this step, per CLT (keyed by its folder in the run: '', or its configuration in a sweep). */
  crossLayerEval?: Record<string, CrossLayerEvalReport>;
}

export interface TrainerOptions {
  /** Where checkpoints go; default `save_dir/run_name` ('unnamed' when no run name). */
  runDir?: string;
  /** Progress and messages. */
  onStep?: (report: StepReport) => void;
  log?: (message: string) => void;
  /** The full run configuration to record in config.json (CLI options included). */
  runConfig?: Record<string, unknown>;
  /** This process's place in a torch.distributed run (from `distInit`). */
  distributed?: { rank: number; worldSize: number };
  /**
   * When the run directory already holds a run and this one does not resume it: move that run
   * aside (renamed to `<run>.old-<time>`) instead of refusing to start.
   */
  overwrite?: boolean;
  /** Held-out rows for `evalEvery` (rows the run does not train on). */
  evalData?: { dataset: TokenDataset; rows: readonly [number, number] };
}
