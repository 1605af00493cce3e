/**
 * Typed prompts and steering (served explorer only): the prompt box on the overview (each
 * token's top latents, linked) and on a latent page (the tokens coloured by this latent), and
 * the latent page's steering panel (the same text continued without and with the latent).
 * A static export has no model behind it: the box says so.
 */
import type { LiveError, OverviewPayload, PromptReply, SteerReply } from '../payloads.js';
import { load } from './data.js';
import { h, num, tokenText } from './dom.js';
import { latentRoute } from './routes.js';

/** POST to the server's api/NAME; the reply, or throws with the server's one-line error. */
async function post<T>(name: 'prompt' | 'steer', body: unknown): Promise<T> {
  const r = await fetch(`api/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const reply = (await r.json().catch(() => ({ error: `the server answered ${r.status}` }))) as T | LiveError;
  if (!r.ok || (reply as LiveError).error !== undefined) throw new Error((reply as LiveError).error ?? `the server answered ${r.status}`);
  return reply as T;
}

function staticNotice(): HTMLElement {
  return h('p', { class: 'notice', id: 'live-static' }, 'Typing a prompt needs the server: `sparsify explore RUN` serves this explorer with its model (this is a static export, or no model is attached).');
}

/** A textarea, a button and a status line; `run` gets the text and fills `out`. */
function box(id: string, title: string, max: number, placeholder: string, controls: HTMLElement[], run: (text: string, out: HTMLElement) => Promise<void>): HTMLElement {
  const text = h('textarea', { id: `${id}-text`, rows: 3, maxlength: max, placeholder });
  const status = h('p', { class: 'meta live-status', id: `${id}-status` });
  const out = h('div', { class: 'live-out', id: `${id}-out` });
  const button = h('button', { id: `${id}-run`, type: 'button' }, 'Run');
  button.addEventListener('click', () => {
    button.disabled = true;
    status.textContent = 'Running\u2026';
    run(text.value, out)
      .then(() => {
        status.textContent = '';
        out.setAttribute('data-done', String(Number(out.getAttribute('data-done') ?? 0) + 1));
      })
      .catch((err: Error) => {
        status.textContent = err.message;
        status.classList.add('error');
      })
      .finally(() => {
        button.disabled = false;
        if (!status.textContent) status.classList.remove('error');
      });
  });
  return h('section', { class: 'live', id }, h('h2', {}, title), text, h('div', { class: 'live-controls' }, ...controls, button), status, out);
}

/** The overview's box: every token of the prompt with the chosen coder's top latents there. */
export function overviewPromptBox(ov: OverviewPayload): HTMLElement {
  if (!ov.live) return h('section', { class: 'live', id: 'prompt' }, h('h2', {}, 'Try a prompt'), staticNotice());
  const pick = h('select', { id: 'prompt-coder' }, ov.coders.map((c, i) => h('option', { value: String(i) }, c.name)));
  return box('prompt', 'Try a prompt', ov.live.max_chars, 'Type text to run through the model', [h('label', {}, 'coder ', pick)], async (text, out) => {
    const index = Number(pick.value);
    const [reply, vocab] = await Promise.all([post<PromptReply>('prompt', { text, coder: ov.coders[index]!.name }), load<string[]>('vocab')]);
    out.replaceChildren(
      h(
        'table',
        { class: 'grid', id: 'prompt-latents' },
        h('thead', {}, h('tr', {}, h('th', {}, 'token'), h('th', {}, 'top latents'))),
        h(
          'tbody',
          {},
          reply.tokens.map((tok, t) =>
            h(
              'tr',
              { class: 'prompt-token', 'data-token': tok },
              h('td', { class: 'tokcell' }, tokenText(vocab[tok])),
              h(
                'td',
                {},
                reply.latents[t]!.slice(0, 5).map(([latent, act]) => h('span', { class: 'live-latent' }, h('a', { href: latentRoute(ov, index, latent), 'data-id': latent }, `${latent}`), ` ${num(act)} `)),
              ),
            ),
          ),
        ),
      ),
    );
  });
}

/** The latent page's box: the prompt's tokens, each coloured by this latent's activation there. */
export function latentPromptBox(ov: OverviewPayload, index: number, latent: number, max: number, vocab: string[]): HTMLElement {
  if (!ov.live) return h('section', { class: 'live', id: 'prompt' }, h('h2', {}, 'Try a prompt'), staticNotice());
  return box('prompt', 'Try a prompt', ov.live.max_chars, 'Type text to see where this latent fires', [], async (text, out) => {
    const reply = await post<PromptReply>('prompt', { text, coder: ov.coders[index]!.name });
    const acts = reply.latents.map((row) => row.find(([l]) => l === latent)?.[1] ?? 0);
    const top = Math.max(max, ...acts);
    out.replaceChildren(
      h(
        'div',
        { class: 'example live-example' },
        h(
          'span',
          { class: 'text' },
          reply.tokens.map((tok, t) => {
            const a = acts[t]!;
            const alpha = top > 0 ? Math.min(1, a / top) : 0;
            return h('span', { class: 'tok', title: `${JSON.stringify(vocab[tok] ?? '')}: ${a}`, 'data-act': a, style: { background: a > 0 ? `rgba(239,108,0,${alpha.toFixed(3)})` : '' } }, tokenText(vocab[tok]));
          }),
        ),
      ),
      h('p', { class: 'meta' }, `fires on ${acts.filter((a) => a > 0).length} of ${acts.length} tokens`),
    );
  });
}

/** The latent page's steering panel: the prompt continued greedily without and with the latent. */
export function steerPanel(ov: OverviewPayload, index: number, latent: number): HTMLElement | null {
  if (!ov.live) return null;
  // A cross-layer transcoder's latent steers by scale only: added at every layer it writes to.
  const clt = ov.coders[index]!.targets !== null;
  const mode = h('select', { id: 'steer-mode' }, h('option', { value: 'scale' }, clt ? 'add scale \u00d7 its decoder rows (every target)' : 'add scale \u00d7 decoder row'), clt ? null : h('option', { value: 'clamp' }, 'clamp activation to'));
  const value = h('input', { id: 'steer-value', type: 'number', step: 'any', value: '8' });
  const tokens = h('input', { id: 'steer-tokens', type: 'number', min: 1, max: ov.live.max_new_tokens, value: String(Math.min(20, ov.live.max_new_tokens)) });
  return box('steer', 'Steer with this latent', ov.live.max_chars, 'Type a prompt to continue', [h('label', {}, mode, ' ', value), h('label', {}, ' new tokens ', tokens)], async (text, out) => {
    const amount = Number(value.value);
    const reply = await post<SteerReply>('steer', { text, coder: ov.coders[index]!.name, latent, [mode.value]: amount, max_new_tokens: Number(tokens.value) });
    out.replaceChildren(
      h('div', { class: 'steer-row' }, h('span', { class: 'label' }, 'without'), h('span', { class: 'steer-text', id: 'steer-without' }, h('span', { class: 'steer-prompt' }, text), reply.without)),
      h('div', { class: 'steer-row' }, h('span', { class: 'label' }, `with ${mode.value} ${amount}`), h('span', { class: 'steer-text', id: 'steer-with' }, h('span', { class: 'steer-prompt' }, text), reply.with)),
    );
  });
}
