/** A latent's page: its numbers, activation histogram, examples, logit effects and neighbours. */
import type { ExamplePayload, LatentPayload, OverviewPayload } from '../payloads.js';
import { barChart } from './charts.js';
import { h, num, pct, tokenText } from './dom.js';
import { latentPromptBox, steerPanel } from './live.js';
import { coderRoute, latentRoute } from './routes.js';

/** An example's window: each token's background in proportion to the activation there. */
function exampleLine(e: ExamplePayload, before: number, max: number, vocab: string[]): HTMLElement {
  const acts = new Array<number>(e.tokens.length).fill(0);
  for (const [j, a] of e.acts) acts[j] = a;
  return h(
    'div',
    { class: 'example', 'data-row': e.row, 'data-position': e.position },
    h('span', { class: 'where' }, `row ${e.row}:${e.position}`),
    h('span', { class: 'act' }, num(e.activation)),
    h(
      'span',
      { class: 'text' },
      e.tokens.map((tok, j) => {
        if (tok < 0) return null;
        const a = acts[j]!;
        const alpha = max > 0 ? Math.min(1, Math.max(0, a / max)) : 0;
        return h('span', { class: `tok${j === before ? ' centre' : ''}`, title: `${JSON.stringify(vocab[tok] ?? '')}: ${a}`, 'data-act': a, style: { background: a > 0 ? `rgba(239,108,0,${alpha.toFixed(3)})` : '' } }, tokenText(vocab[tok]));
      }),
    ),
  );
}

function logitTable(title: string, id: string, rows: [number, number][], vocab: string[]): HTMLElement {
  return h(
    'table',
    { class: 'grid logits', id },
    h('thead', {}, h('tr', {}, h('th', { colspan: 2 }, title))),
    h(
      'tbody',
      {},
      rows.map(([tok, v]) => h('tr', {}, h('td', { class: 'tokcell' }, tokenText(vocab[tok])), h('td', { class: 'n' }, num(v)))),
    ),
  );
}

/** A cross-layer transcoder latent's decoder norm per target layer, each as a bar against the largest. */
function decoderNorms(norms: [string, number][]): HTMLElement {
  const top = Math.max(...norms.map(([, n]) => n), 0);
  return h(
    'section',
    { id: 'decoder-norms' },
    h('h2', {}, 'Decoder norm per target layer'),
    h('p', { class: 'meta' }, 'what this latent writes to each later MLP output'),
    h(
      'table',
      { class: 'grid' },
      h(
        'tbody',
        {},
        norms.map(([target, n]) =>
          h('tr', { 'data-target': target }, h('td', {}, target), h('td', { class: 'n' }, num(n)), h('td', {}, h('div', { class: 'bar', style: { width: `${top > 0 ? Math.round((100 * n) / top) : 0}px`, height: '0.8em', background: '#ef6c00' } }))),
        ),
      ),
    ),
  );
}

export function latentView(index: number, ov: OverviewPayload, l: LatentPayload, before: number, vocab: string[]): HTMLElement {
  const coder = ov.coders[index]!;
  const hist = h('div', { class: 'chart', id: 'histogram' });
  const bins = l.histogram.counts.length;
  const stat = (label: string, id: string, value: string): HTMLElement => h('div', { class: 'stat' }, h('div', { class: 'label' }, label), h('div', { class: 'value', id }, value));
  const page = h(
    'main',
    { id: 'latent', 'data-id': l.id },
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'overview'), ' / ', h('a', { href: coderRoute(ov, index) }, coder.name), ` / latent ${l.id}`),
    h(
      'h1',
      {},
      `${coder.name} latent ${l.id}`,
      h('span', { class: 'step' }, l.id > 0 ? h('a', { href: latentRoute(ov, index, l.id - 1), id: 'prev-latent' }, '\u2190') : null, ' ', l.id < coder.num_latents - 1 ? h('a', { href: latentRoute(ov, index, l.id + 1), id: 'next-latent' }, '\u2192') : null),
    ),
    h('div', { class: 'stats' }, stat('frequency', 'stat-frequency', pct(l.frequency)), stat('firings', 'stat-count', String(l.count)), stat('max activation', 'stat-max', num(l.max)), stat('mean activation', 'stat-mean', num(l.mean))),
    hist,
  );
  const examples = h('section', { id: 'top-examples' }, h('h2', {}, 'Top activations'));
  if (l.top.length === 0) examples.append(h('p', { class: 'notice' }, 'This latent never fired on the cached tokens.'));
  for (const e of l.top) examples.append(exampleLine(e, before, l.max, vocab));
  const intervals = h('section', { id: 'intervals' }, h('h2', {}, 'Samples across the activation range'));
  for (const iv of l.intervals) {
    if (iv.examples.length === 0) continue;
    intervals.append(h('h3', {}, `${num(iv.lo)} \u2013 ${num(iv.hi)}`));
    for (const e of iv.examples) intervals.append(exampleLine(e, before, l.max, vocab));
  }
  const side = h('aside', {});
  if (l.decoder_norms) side.append(decoderNorms(l.decoder_norms));
  if (l.logits) side.append(h('h2', {}, 'Logit effects'), h('p', { class: 'meta' }, l.decoder_norms ? 'decoder rows summed over the targets \u00d7 unembedding (no final norm)' : 'decoder row \u00d7 unembedding (no final norm)'), logitTable('promoted', 'logits-top', l.logits.top, vocab), logitTable('suppressed', 'logits-bottom', l.logits.bottom, vocab));
  else side.append(h('p', { class: 'notice' }, 'No logit effects: the model has no LM head.'));
  side.append(
    h('h2', {}, 'Neighbours'),
    h('p', { class: 'meta' }, l.decoder_norms ? 'by cosine similarity of the summed decoder rows' : 'by decoder cosine similarity'),
    h(
      'ul',
      { id: 'neighbours' },
      l.neighbours.map(([id, sim]) => h('li', {}, h('a', { class: 'neighbour', href: latentRoute(ov, index, id), 'data-id': id }, `latent ${id}`), ` ${num(sim)}`)),
    ),
  );
  page.append(h('div', { class: 'columns' }, h('div', { class: 'main-col' }, examples, latentPromptBox(ov, index, l.id, l.max, vocab), steerPanel(ov, index, l.id), intervals), side));
  queueMicrotask(() => {
    const w = Math.min(700, Math.max(320, window.innerWidth - 420));
    // The axis ends one bin past the last one with firings (near the max activation), not at the range's end.
    let last = 0;
    l.histogram.counts.forEach((c, i) => (last = c > 0 ? i : last));
    const shown = Math.min(bins, last + 2);
    const x = Array.from({ length: shown }, (_, i) => (i * l.histogram.range) / bins);
    barChart(hist, 'activation histogram (firings)', 'activation', x, l.histogram.counts.slice(0, shown), w, 'firings');
    hist.setAttribute('data-axis-end', String((shown * l.histogram.range) / bins));
  });
  return page;
}
