/**
 * The latent data files' binary form, written by the server side (site.ts) and read by the
 * browser app: a chunk of latents as one little-endian byte string (base64 in its data file).
 * Pure TypeScript over DataView: no Node or DOM here, so both sides share it.
 *
 * Why binary: as JSON, every example repeated its 21 token ids and the intervals repeated
 * the top examples; the static export of the bundled default run was 124 MB. Here an
 * example is its token index into the cached rows (the `tokens` data file holds them once),
 * its activation, and the window's other nonzero activations; an interval lists example
 * numbers. Every number is the cache's own (float32 as float32, the mean as float64), so a
 * round trip gives back the same payload.
 *
 * One latent:
 *   count varuint, max f32, mean f64, histogram range f32, bins varuint, bins x varuint
 *   examples varuint, each: token index varuint, activation f32, others varuint, others x (window index u8, f32)
 *   top varuint (the first that many examples, in order)
 *   intervals varuint, each: examples varuint, each an example number varuint
 *   logits u8 (0 none), then top varuint x (token varuint, f32), bottom likewise
 *   neighbours varuint x (id varuint, similarity f32)
 */
import type { ExamplePayload, LatentPayload } from './payloads.js';

/** A growable little-endian byte buffer. */
class ByteWriter {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  private at = 0;

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.at + n));
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.room(1);
    this.view.setUint8(this.at++, v);
  }

  /** LEB128: small counts and ids in one byte. */
  varuint(v: number): void {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`cannot pack ${v} as an unsigned integer`);
    while (v >= 0x80) {
      this.u8((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.u8(v);
  }

  f32(v: number): void {
    this.room(4);
    this.view.setFloat32(this.at, v, true);
    this.at += 4;
  }

  f64(v: number): void {
    this.room(8);
    this.view.setFloat64(this.at, v, true);
    this.at += 8;
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.at);
  }
}

class ByteReader {
  private readonly view: DataView;
  private at = 0;

  constructor(bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  u8(): number {
    return this.view.getUint8(this.at++);
  }

  varuint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
    }
  }

  f32(): number {
    const v = this.view.getFloat32(this.at, true);
    this.at += 4;
    return v;
  }

  f64(): number {
    const v = this.view.getFloat64(this.at, true);
    this.at += 8;
    return v;
  }

  get done(): boolean {
    return this.at === this.view.byteLength;
  }
}

/** What a chunk's latents share: where the cached rows start, their length, the window and the token count. */
export interface PackContext {
  /** First cached row (a dataset row index). */
  startRow: number;
  ctxLen: number;
  /** Tokens of the window before the example's own. */
  before: number;
  /** The coder's cached token count (frequency = count / tokens). */
  tokens: number;
}

/** The cached rows' token ids, row after row: the examples' windows are read from here. */
export interface TokenStream {
  startRow: number;
  ctxLen: number;
  ids: Int32Array;
}

/** One example's identity: its token and its window's activations (the top list and the samples may hold the same one). */
const exampleKey = (e: ExamplePayload): string => `${e.row}:${e.position}:${e.acts.map(([j, a]) => `${j}=${a}`).join(',')}`;

/** Pack latents (as SiteData.latent gives them) into one byte string. */
export function packLatents(latents: readonly LatentPayload[], ctx: PackContext): Uint8Array {
  const w = new ByteWriter();
  for (const l of latents) {
    w.varuint(l.count);
    w.f32(l.max);
    w.f64(l.mean);
    w.f32(l.histogram.range);
    w.varuint(l.histogram.counts.length);
    for (const c of l.histogram.counts) w.varuint(c);
    const numbers = new Map<string, number>();
    const examples: ExamplePayload[] = [];
    for (const e of [...l.top, ...l.intervals.flatMap((iv) => iv.examples)]) {
      const key = exampleKey(e);
      if (numbers.has(key)) continue;
      numbers.set(key, examples.length);
      examples.push(e);
    }
    w.varuint(examples.length);
    for (const e of examples) {
      w.varuint((e.row - ctx.startRow) * ctx.ctxLen + e.position);
      w.f32(e.activation);
      const others = e.acts.filter(([j]) => j !== ctx.before);
      w.varuint(others.length);
      for (const [j, a] of others) {
        w.u8(j);
        w.f32(a);
      }
    }
    // The top examples come first and are distinct, so they are examples 0..top-1.
    w.varuint(l.top.length);
    w.varuint(l.intervals.length);
    for (const iv of l.intervals) {
      w.varuint(iv.examples.length);
      for (const e of iv.examples) w.varuint(numbers.get(exampleKey(e))!);
    }
    w.u8(l.logits ? 1 : 0);
    if (l.logits) {
      for (const list of [l.logits.top, l.logits.bottom]) {
        w.varuint(list.length);
        for (const [tok, v] of list) {
          w.varuint(tok);
          w.f32(v);
        }
      }
    }
    w.varuint(l.neighbours.length);
    for (const [id, sim] of l.neighbours) {
      w.varuint(id);
      w.f32(sim);
    }
  }
  return w.bytes();
}

/** The window of `width` token ids from `from` in the stream, -1 outside the example's row. */
function windowTokens(stream: TokenStream, token: number, before: number, width: number): number[] {
  const row = Math.floor(token / stream.ctxLen);
  const rowStart = row * stream.ctxLen;
  const out: number[] = [];
  for (let j = 0; j < width; j++) {
    const t = token - before + j;
    out.push(t >= rowStart && t < rowStart + stream.ctxLen ? stream.ids[t]! : -1);
  }
  return out;
}

/**
 * Unpack `count` latents starting at id `start`; `width` is the window (before + 1 + after).
 * Gives the payloads packLatents was given.
 */
export function unpackLatents(bytes: Uint8Array, start: number, count: number, ctx: PackContext & { width: number }, stream: TokenStream): LatentPayload[] {
  const r = new ByteReader(bytes);
  const out: LatentPayload[] = [];
  for (let i = 0; i < count; i++) {
    const n = r.varuint();
    const max = r.f32();
    const mean = r.f64();
    const range = r.f32();
    const counts = Array.from({ length: r.varuint() }, () => r.varuint());
    const examples: ExamplePayload[] = Array.from({ length: r.varuint() }, () => {
      const token = r.varuint();
      const activation = r.f32();
      const acts: [number, number][] = Array.from({ length: r.varuint() }, () => [r.u8(), r.f32()] as [number, number]);
      if (activation !== 0) acts.push([ctx.before, activation]);
      acts.sort((a, b) => a[0] - b[0]);
      return { row: ctx.startRow + Math.floor(token / ctx.ctxLen), position: token % ctx.ctxLen, activation, tokens: windowTokens(stream, token, ctx.before, ctx.width), acts };
    });
    const top = examples.slice(0, r.varuint());
    const numIntervals = r.varuint();
    const intervals = Array.from({ length: numIntervals }, (_, k) => ({
      lo: (k * max) / numIntervals,
      hi: ((k + 1) * max) / numIntervals,
      examples: Array.from({ length: r.varuint() }, () => examples[r.varuint()]!),
    }));
    const pairs = (): [number, number][] => Array.from({ length: r.varuint() }, () => [r.varuint(), r.f32()] as [number, number]);
    const logits = r.u8() === 1 ? { top: pairs(), bottom: pairs() } : null;
    const neighbours = pairs();
    out.push({ id: start + i, count: n, frequency: n / ctx.tokens, max, mean, histogram: { range, counts }, top, intervals, logits, neighbours });
  }
  if (!r.done) throw new Error('a latent data file holds more than its latents');
  return out;
}
