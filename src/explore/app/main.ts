/**
 * The explorer's app: hash routes over the data files, so it works the same from the local
 * server and from a static export opened with file://.
 *   #/                    overview
 *   #/c/<name>?query      a coder's latent table (by its name; its index works too)
 *   #/c/<name>/l/<id>     latent id of that coder
 */
import { unpackLatents } from '../packing.js';
import type { LatentChunkPayload, LatentPayload, OverviewPayload, TablePayload, TokensPayload } from '../payloads.js';
import { NotFound, load } from './data.js';
import { h, i32, u8 } from './dom.js';
import { latentView } from './latent.js';
import { overviewView } from './overview.js';
import { coderIndex } from './routes.js';
import { parseQuery, tableView } from './table.js';

const root = document.getElementById('app')!;

function notFound(message: string): HTMLElement {
  return h('main', { id: 'not-found' }, h('h1', {}, 'Not found'), h('p', {}, message), h('p', {}, h('a', { href: '#/' }, 'back to the overview')));
}

const unpackedChunks = new WeakMap<LatentChunkPayload, LatentPayload[]>();

/** A chunk's latents, unpacked once (the token stream loads with the first). */
async function unpacked(chunk: LatentChunkPayload): Promise<LatentPayload[]> {
  let latents = unpackedChunks.get(chunk);
  if (!latents) {
    const t = await load<TokensPayload>('tokens');
    const ctx = { startRow: t.start_row, ctxLen: t.ctx_len, before: chunk.before, tokens: chunk.tokens, width: chunk.before + 1 + chunk.after };
    latents = unpackLatents(u8(chunk.packed), chunk.start, chunk.count, ctx, { startRow: t.start_row, ctxLen: t.ctx_len, ids: i32(t.ids) });
    const norms = chunk.decoder_norms;
    if (norms) latents.forEach((l, i) => (l.decoder_norms = norms.norms[i]!.map((n, j): [string, number] => [norms.targets[j]!, n])));
    unpackedChunks.set(chunk, latents);
  }
  return latents;
}

async function route(): Promise<HTMLElement> {
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?') as [string, string?];
  const parts = path.split('/').filter(Boolean);
  const ov = await load<OverviewPayload>('overview');
  document.title = `sparsify explore: ${ov.title}`;
  if (parts.length === 0) return overviewView(ov);
  if (parts[0] !== 'c' || parts.length < 2) return notFound(`no page ${location.hash}`);
  const index = coderIndex(ov, parts[1]!);
  const coder = index === undefined ? undefined : ov.coders[index];
  if (index === undefined || !coder) return notFound(`no coder ${parts[1]}: this cache has coders ${ov.coders.map((c) => c.name).join(', ')}`);
  const vocab = await load<string[]>('vocab');
  if (parts.length === 2) return tableView(index, ov, await load<TablePayload>(`coders/${index}/table`), vocab, parseQuery(new URLSearchParams(query)));
  const id = Number(parts[3]);
  if (parts[2] !== 'l' || parts.length !== 4 || !/^\d+$/.test(parts[3] ?? '') || id >= coder.num_latents) {
    return notFound(`latent ${parts[3] ?? ''} is out of range: ${coder.name} has latents 0..${coder.num_latents - 1}`);
  }
  const chunk = await load<LatentChunkPayload>(`coders/${index}/latents/${Math.floor(id / ov.chunk)}`);
  return latentView(index, ov, (await unpacked(chunk))[id - chunk.start]!, chunk.before, vocab);
}

let current = 0;
async function render(): Promise<void> {
  const mine = ++current;
  let page: HTMLElement;
  try {
    page = await route();
  } catch (err) {
    page = err instanceof NotFound ? notFound(err.message) : h('main', { id: 'error' }, h('h1', {}, 'Error'), h('pre', {}, String(err)));
  }
  if (mine !== current) return; // a later navigation won
  root.replaceChildren(page);
  root.setAttribute('data-ready', location.hash || '#/');
  window.scrollTo(0, 0);
}

window.addEventListener('hashchange', () => void render());
void render();
