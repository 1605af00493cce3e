/** Small DOM helpers: build elements, format numbers, decode the table's base64 columns. */

type Child = Node | string | number | null | undefined | false;

/** `h('a', { href: '#/' }, 'text')`: an element with attributes (on* as listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, unknown> = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value as EventListener);
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** A number for a table cell: fixed digits, or exponent form when tiny. */
export function num(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return '-';
  if (x !== 0 && Math.abs(x) < 10 ** -digits) return x.toExponential(1);
  return x.toFixed(digits);
}

/** A share as a percentage, small ones readable. */
export function pct(x: number): string {
  if (x === 0) return '0%';
  if (x < 0.0001) return `${(x * 100).toExponential(1)}%`;
  return `${(x * 100).toFixed(x < 0.01 ? 3 : 2)}%`;
}

function bytes(b64: string): ArrayBuffer {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out.buffer;
}

export const f32 = (b64: string): Float32Array => new Float32Array(bytes(b64));
export const u8 = (b64: string): Uint8Array => new Uint8Array(bytes(b64));
export const i32 = (b64: string): Int32Array => new Int32Array(bytes(b64));

/** A token's text as shown: newlines and tabs as visible marks, empty as a dot. */
export function tokenText(text: string | undefined): string {
  if (text === undefined) return '\u00bf';
  const shown = text.replace(/\n/g, '\u21b5').replace(/\t/g, '\u21e5').replace(/\r/g, '');
  return shown === '' ? '\u00b7' : shown;
}
