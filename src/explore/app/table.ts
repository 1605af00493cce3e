/** A hookpoint's latent table: sortable, filterable, paged; jump to a latent by id. */
import type { OverviewPayload, TablePayload } from '../payloads.js';
import { f32, h, i32, num, pct, tokenText } from './dom.js';
import { coderRoute, latentRoute } from './routes.js';

const PAGE = 50;
type SortKey = 'id' | 'frequency' | 'max' | 'mean';

export interface TableQuery {
  sort: SortKey;
  desc: boolean;
  q: string;
  dead: boolean;
  page: number;
}

export function parseQuery(params: URLSearchParams): TableQuery {
  const sort = params.get('sort');
  return {
    sort: sort === 'id' || sort === 'max' || sort === 'mean' || sort === 'frequency' ? sort : 'frequency',
    desc: params.get('desc') !== '0',
    q: params.get('q') ?? '',
    dead: params.get('dead') === '1',
    page: Math.max(0, Number(params.get('page') ?? 0) || 0),
  };
}

const queryString = (q: TableQuery): string => new URLSearchParams({ sort: q.sort, desc: q.desc ? '1' : '0', q: q.q, dead: q.dead ? '1' : '0', page: String(q.page) }).toString();

export function tableView(index: number, ov: OverviewPayload, t: TablePayload, vocab: string[], query: TableQuery): HTMLElement {
  const columns = { frequency: f32(t.frequency), max: f32(t.max), mean: f32(t.mean) };
  const top = i32(t.top_tokens);
  const go = (q: Partial<TableQuery>): void => {
    location.hash = `${coderRoute(ov, index)}?${queryString({ ...query, ...q })}`;
  };
  const topTokens = (id: number): string[] =>
    [0, 1, 2]
      .map((j) => top[id * 3 + j]!)
      .filter((tok) => tok >= 0)
      .map((tok) => tokenText(vocab[tok]));
  const topText = (id: number): string => topTokens(id).join(' ');
  // Filter, then sort (ties by id).
  const needle = query.q.toLowerCase();
  let ids = Array.from({ length: t.num_latents }, (_, i) => i).filter((id) => (query.dead || columns.frequency[id]! > 0) && (!needle || topText(id).toLowerCase().includes(needle)));
  const key = query.sort;
  const value = (id: number): number => (key === 'id' ? id : columns[key][id]!);
  ids.sort((a, b) => (query.desc ? value(b) - value(a) : value(a) - value(b)) || a - b);
  const pages = Math.max(1, Math.ceil(ids.length / PAGE));
  const page = Math.min(query.page, pages - 1);
  const shown = ids.slice(page * PAGE, (page + 1) * PAGE);
  ids = [];
  const head = (label: string, k: SortKey): HTMLElement =>
    h('th', { class: `sortable${query.sort === k ? ' sorted' : ''}`, 'data-sort': k, onclick: () => go({ sort: k, desc: query.sort === k ? !query.desc : k !== 'id', page: 0 }) }, label, query.sort === k ? (query.desc ? ' \u25bc' : ' \u25b2') : '');
  const filter = h('input', { id: 'filter', type: 'search', placeholder: 'top token contains\u2026', value: query.q });
  filter.addEventListener('change', () => go({ q: filter.value, page: 0 }));
  const jump = h('input', { id: 'jump', type: 'number', min: 0, max: t.num_latents - 1, placeholder: 'latent id' });
  const jumpTo = (): void => {
    if (jump.value !== '') location.hash = latentRoute(ov, index, Number(jump.value));
  };
  jump.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') jumpTo();
  });
  const deadBox = h('input', { id: 'show-dead', type: 'checkbox', checked: query.dead });
  deadBox.addEventListener('change', () => go({ dead: deadBox.checked, page: 0 }));
  const coder = ov.coders[index]!;
  return h(
    'main',
    { id: 'table' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'overview'), ' / ', coder.name),
    h('h1', {}, `${coder.name}: ${t.num_latents} latents`),
    h('div', { class: 'controls' }, filter, h('label', {}, deadBox, ' show latents that never fired'), jump, h('button', { id: 'jump-go', onclick: jumpTo }, 'go')),
    h(
      'table',
      { class: 'grid', id: 'latents' },
      h('thead', {}, h('tr', {}, head('latent', 'id'), head('frequency', 'frequency'), head('max act.', 'max'), head('mean act.', 'mean'), h('th', {}, 'top tokens'))),
      h(
        'tbody',
        {},
        shown.map((id) =>
          h(
            'tr',
            { class: 'latent-row', 'data-id': id },
            h('td', {}, h('a', { href: latentRoute(ov, index, id) }, String(id))),
            h('td', { class: 'n' }, pct(columns.frequency[id]!)),
            h('td', { class: 'n' }, num(columns.max[id]!)),
            h('td', { class: 'n' }, num(columns.mean[id]!)),
            h('td', { class: 'toks' }, topTokens(id).map((t) => h('span', { class: 'chip' }, t))),
          ),
        ),
      ),
    ),
    h(
      'div',
      { class: 'pager' },
      h('button', { id: 'prev-page', disabled: page === 0, onclick: () => go({ page: page - 1 }) }, '\u2190 prev'),
      h('span', { id: 'page-info' }, ` page ${page + 1} of ${pages} `),
      h('button', { id: 'next-page', disabled: page >= pages - 1, onclick: () => go({ page: page + 1 }) }, 'next \u2192'),
    ),
  );
}
