/** Progress: a bar with tokens/s, loss and ETA on a terminal; plain lines otherwise. */
import cliProgress from 'cli-progress';
import type { StepReport } from '../trainer/trainer.js';

export interface Progress {
  update(report: StepReport): void;
  stop(): void;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The loss to show: ce/kl, else the mean fvu, per configuration in a sweep (`hookpoint/configuration[/seedN]`). */
export function mainLoss(report: Pick<StepReport, 'metrics'>): string {
  const e2e = report.metrics.ce?.ce ?? report.metrics.kl?.kl;
  if (e2e !== undefined) return `loss ${e2e.toFixed(4)}`;
  const byConfig = new Map<string, number[]>();
  for (const [name, m] of Object.entries(report.metrics)) {
    if (m.fvu === undefined) continue;
    const part = name.split('/')[1];
    const config = part && !/^seed\d+$/.test(part) ? part : '';
    byConfig.set(config, [...(byConfig.get(config) ?? []), m.fvu]);
  }
  if (byConfig.size === 0) return '';
  if (byConfig.size === 1 && byConfig.has('')) return `fvu ${mean(byConfig.get('')!).toFixed(4)}`;
  return `fvu ${[...byConfig].map(([config, fvus]) => `${config} ${mean(fvus).toFixed(3)}`).join(', ')}`;
}

/** Progress over `total` batches, starting at `startStep` with `startTokens` already seen (resume). */
export function createProgress(total: number, startStep: number, startTokens: number, tty: boolean = Boolean(process.stderr.isTTY)): Progress {
  const started = Date.now();
  const tokensPerSecond = (report: StepReport): number => {
    const secs = (Date.now() - started) / 1000;
    return secs > 0 ? (report.tokens - startTokens) / secs : 0;
  };
  if (tty) {
    const bar = new cliProgress.SingleBar(
      { format: 'training |{bar}| {value}/{total} steps | {tokps} tok/s | {loss} | ETA {eta_formatted}', stream: process.stderr, hideCursor: true, etaBuffer: 20 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, startStep, { tokps: '-', loss: '' });
    return {
      update: (report) => bar.update(report.step, { tokps: Math.round(tokensPerSecond(report)).toString(), loss: mainLoss(report) }),
      stop: () => bar.stop(),
    };
  }
  let lastPrint = 0;
  return {
    update(report) {
      const now = Date.now();
      const first = report.step === startStep + 1;
      if (now - lastPrint < 2000 && report.step !== report.totalSteps && !first) return;
      lastPrint = now;
      const done = report.step - startStep;
      const eta = done > 0 ? ((report.totalSteps - report.step) * (now - started)) / 1000 / done : 0;
      process.stderr.write(`step ${report.step}/${report.totalSteps} | ${Math.round(tokensPerSecond(report))} tok/s | ${mainLoss(report)} | ETA ${eta.toFixed(0)}s\n`);
    },
    stop: () => undefined,
  };
}
