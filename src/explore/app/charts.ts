/** Charts drawn with uPlot (bundled into the app: no network needed). */
import uPlot from 'uplot';

const COLOURS = ['#4269d0', '#efb118', '#ff725c', '#6cc5b0', '#3ca951', '#ff8ab7', '#a463f2', '#97bbf5', '#9c6b4e', '#9498a0'];

export const colour = (i: number): string => COLOURS[i % COLOURS.length]!;

/** Line chart: one x series, several y series (null where missing). */
export function lineChart(target: HTMLElement, title: string, xLabel: string, x: number[], series: { label: string; values: (number | null)[] }[], width: number, log = false): uPlot {
  const opts: uPlot.Options = {
    title,
    width,
    height: 220,
    scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
    axes: [{ label: xLabel }, {}],
    series: [{ label: xLabel }, ...series.map((s, i) => ({ label: s.label, stroke: colour(i), width: 1.5, spanGaps: true }))],
    legend: { live: true },
  };
  return new uPlot(opts, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, target);
}

/** Bar chart of counts over bins (bin starts `x`, one bar each). */
export function barChart(target: HTMLElement, title: string, xLabel: string, x: number[], counts: number[], width: number, yLabel = 'latents'): uPlot {
  const bars = uPlot.paths.bars!({ size: [0.9, 100], align: 1 });
  const opts: uPlot.Options = {
    title,
    width,
    height: 180,
    scales: { x: { time: false } },
    axes: [{ label: xLabel }, { label: yLabel }],
    series: [{ label: xLabel }, { label: yLabel, fill: 'rgba(66,105,208,0.6)', stroke: '#4269d0', paths: bars, points: { show: false } }],
    legend: { show: false },
    cursor: { points: { show: false } },
  };
  return new uPlot(opts, [x, counts], target);
}
