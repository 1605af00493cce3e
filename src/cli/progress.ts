/** Training progress: a bar with tokens/s, loss and ETA on a terminal; plain lines otherwise. */
import type { StepReport } from '../trainer/trainer.js';
import type { Terminal } from './terminal.js';

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

/** Training progress over `total` batches, starting at `startStep` with `startTokens` already seen (resume). */
export function createProgress(total: number, startStep: number, startTokens: number, terminal: Terminal): Progress {
  const started = Date.now();
  const bar = terminal.bar({
    format: 'training |{bar}| {value}/{total} steps | {tokps} tok/s | {loss} | ETA {eta_formatted}',
    total,
    start: startStep,
    fields: { tokps: '-', loss: '', eta: '0' },
    line: (step, all, f) => `step ${step}/${all} | ${f.tokps} tok/s | ${f.loss} | ETA ${f.eta}s`,
  });
  return {
    update(report) {
      const secs = (Date.now() - started) / 1000;
      const tokps = secs > 0 ? (report.tokens - startTokens) / secs : 0;
      const done = report.step - startStep;
      const eta = done > 0 ? ((report.totalSteps - report.step) * secs) / done : 0;
      bar.update(report.step, { tokps: Math.round(tokps).toString(), loss: mainLoss(report), eta: eta.toFixed(0) });
    },
    stop: () => bar.stop(),
  };
}
