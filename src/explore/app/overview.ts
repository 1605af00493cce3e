/** The run overview: training curves, evaluation metrics, and each coder's firing densities. */
import type { OverviewPayload } from '../payloads.js';
import { barChart, lineChart } from './charts.js';
import { h } from './dom.js';
import { overviewPromptBox } from './live.js';
import { coderRoute } from './routes.js';

/** metrics.jsonl keys are `family/hookpoint`: one chart per family, a line per hookpoint. */
function families(lines: Record<string, number | string>[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of lines) {
    for (const [key, value] of Object.entries(line)) {
      const slash = key.indexOf('/');
      if (slash < 0 || typeof value !== 'number') continue;
      const family = key.slice(0, slash);
      const list = out.get(family) ?? [];
      if (!list.includes(key)) list.push(key);
      out.set(family, list);
    }
  }
  return out;
}

function curves(ov: OverviewPayload, width: number): HTMLElement {
  const box = h('section', { id: 'curves' }, h('h2', {}, 'Training'));
  const { lines, message } = ov.metrics;
  if (!lines) {
    box.append(h('p', { class: 'notice', id: 'metrics-missing' }, message ?? 'no training curves'));
    return box;
  }
  const axisPick = h('select', { id: 'x-axis' }, h('option', { value: 'step' }, 'step'), h('option', { value: 'tokens' }, 'tokens'));
  const charts = h('div', { class: 'charts' });
  const draw = (): void => {
    charts.replaceChildren();
    const xKey = axisPick.value;
    const x = lines.map((l) => Number(l[xKey] ?? NaN));
    for (const [family, keys] of families(lines)) {
      const holder = h('div', { class: 'chart', 'data-family': family });
      charts.append(holder);
      const series = keys.map((k) => ({ label: k.slice(family.length + 1), values: lines.map((l) => (typeof l[k] === 'number' ? (l[k] as number) : null)) }));
      lineChart(holder, family, xKey, x, series, width);
    }
  };
  axisPick.addEventListener('change', draw);
  box.append(h('label', {}, 'x axis ', axisPick), charts);
  draw();
  return box;
}

function evalTable(ov: OverviewPayload): HTMLElement | null {
  if (!ov.eval) return null;
  const { columns, rows } = ov.eval;
  return h(
    'section',
    { id: 'eval' },
    h('h2', {}, 'Evaluation (eval.json)'),
    h(
      'table',
      { class: 'grid' },
      h('thead', {}, h('tr', {}, h('th', {}, 'coder'), columns.map((name) => h('th', {}, name)))),
      h(
        'tbody',
        {},
        rows.map((row) => h('tr', { 'data-coder': row.coder }, h('td', {}, row.coder), row.cells.map((cell) => h('td', { class: 'n' }, cell)))),
      ),
    ),
  );
}

export function overviewView(ov: OverviewPayload): HTMLElement {
  const width = Math.min(560, Math.max(320, Math.floor((window.innerWidth - 80) / 2)));
  const c = ov.cache;
  const page = h(
    'main',
    { id: 'overview' },
    h('h1', {}, ov.title),
    h('p', { class: 'meta' }, `${c.model} on ${c.dataset}${c.split ? ` (${c.split})` : ''}: rows ${c.rows.start}..${c.rows.end} of ${c.rows.of}, ${c.ctx_len} tokens each`),
  );
  const coders = h('section', { id: 'coders' }, h('h2', {}, 'Coders'));
  ov.coders.forEach((coder, i) => {
    const chart = h('div', { class: 'chart' });
    coders.append(
      h(
        'div',
        { class: 'coder-card', 'data-coder': coder.name },
        h('h3', {}, h('a', { href: coderRoute(ov, i) }, coder.name)),
        h('p', { class: 'meta' }, `${coder.num_latents} latents, k=${coder.k}, d_in ${coder.d_in}, ${coder.tokens} tokens cached; `, h('span', { class: 'dead' }, `${coder.density.dead} never fired`)),
        chart,
      ),
    );
    barChart(chart, 'firing density (log10)', 'log10 frequency', coder.density.edges.slice(0, -1), coder.density.counts, width);
  });
  page.append(overviewPromptBox(ov), coders, curves(ov, width));
  const ev = evalTable(ov);
  if (ev) page.append(ev);
  return page;
}
