/**
 * The explorer's data, as the pages load it: small JavaScript files that hand a payload to
 * `window.sparsifyData(path, payload)`. Script files rather than fetch(), so the same site
 * works from a server and from `file://` (where browsers refuse fetch). The server makes
 * them on request; a static export writes them all.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { densityHistogram } from '../eval/evaluate.js';
import { CODER_METRICS, SPLICE_METRICS, type Column } from '../eval/metrics/index.js';
import type { LatentCache, LatentExample } from './latent-cache.js';
import { packLatents } from './packing.js';
import type { ExamplePayload, LatentChunkPayload, LatentPayload, LiveLimits, OverviewPayload, TablePayload, TokensPayload } from './payloads.js';

/** Latents per data file of latent details. */
export const CHUNK = 32;

/** Lines of metrics.jsonl the overview plots at most. */
const MAX_METRIC_LINES = 2000;

/** base64 of a typed array's bytes (columns travel compactly; the page decodes them). */
function b64(a: Float32Array | Int32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

function readMetrics(runDir: string | null): OverviewPayload['metrics'] {
  const path = runDir ? join(runDir, 'metrics.jsonl') : null;
  if (!path || !existsSync(path)) {
    return { lines: null, message: runDir ? `${runDir} has no metrics.jsonl: no training curves to show` : 'these coders come without their run: no training curves to show' };
  }
  const all = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, number | string>];
      } catch {
        return [];
      }
    });
  if (all.length === 0) return { lines: null, message: `${path} is empty: no training curves to show` };
  const every = Math.ceil(all.length / MAX_METRIC_LINES);
  const lines = all.filter((_, i) => i % every === 0 || i === all.length - 1);
  return { lines, message: null };
}

function readEval(runDir: string | null): OverviewPayload['eval'] {
  const path = runDir ? join(runDir, 'eval.json') : null;
  if (!path || !existsSync(path)) return null;
  try {
    const report = JSON.parse(readFileSync(path, 'utf8')) as { coders?: Record<string, Record<string, unknown>> };
    if (!report.coders) return null;
    // The metric registry's overview columns; a metric the report lacks shows as '-'.
    const columns = [...CODER_METRICS, ...SPLICE_METRICS].flatMap((m) => (m.overview ? [{ metric: m, column: m.overview as Column<unknown> }] : []));
    const rows = Object.entries(report.coders).map(([coder, c]) => ({
      coder,
      cells: columns.map(({ metric, column }) => {
        const v = metric.kind === 'coder' ? c[metric.name] : (c.splice as Record<string, unknown> | null | undefined)?.[metric.name];
        return v === undefined || v === null ? '-' : column.format(v);
      }),
    }));
    return { columns: columns.map((c) => c.column.head), rows };
  } catch {
    return null;
  }
}

function example(e: LatentExample): ExamplePayload {
  const acts: [number, number][] = [];
  e.windowActs.forEach((a, j) => {
    if (a !== 0) acts.push([j, a]);
  });
  return { row: e.row, position: e.position, activation: e.activation, tokens: e.windowTokens, acts };
}

/** Every data file's payload, by path (`overview`, `vocab`, `tokens`, `coders/<i>/table`, `coders/<i>/latents/<n>`). */
export class SiteData {
  private readonly tables = new Map<string, TablePayload>();

  /**
   * @param runDir The run the coders belong to (for its metrics.jsonl and eval.json), if any.
   * @param live What the server takes of typed prompts, when it runs them (null: a static export).
   */
  constructor(
    readonly cache: LatentCache,
    readonly runDir: string | null,
    readonly live: LiveLimits | null = null,
  ) {}

  get coderNames(): string[] {
    return Object.keys(this.cache.index.coders);
  }

  overview(): OverviewPayload {
    const { index } = this.cache;
    return {
      title: this.runDir ?? this.cache.dir,
      cache: { model: index.model, dataset: index.dataset, split: index.split, rows: index.rows, ctx_len: index.ctx_len, created: index.created },
      metrics: readMetrics(this.runDir),
      eval: readEval(this.runDir),
      coders: Object.entries(index.coders).map(([name, c]) => {
        const tokens = this.cache.tokens(name);
        return { name, hookpoint: c.hookpoint, num_latents: c.num_latents, d_in: c.d_in, k: c.k, tokens, density: densityHistogram(Array.from(this.cache.table(name).count), tokens), targets: c.targets ?? null };
      }),
      chunk: CHUNK,
      has_logits: index.has_logits,
      live: this.live,
    };
  }

  table(coder: string): TablePayload {
    let t = this.tables.get(coder);
    if (!t) {
      const table = this.cache.table(coder);
      t = {
        coder,
        num_latents: table.count.length,
        tokens: this.cache.tokens(coder),
        frequency: b64(Float32Array.from(table.frequency)),
        max: b64(table.max),
        mean: b64(Float32Array.from(table.mean)),
        top_tokens: b64(this.cache.topTokens(coder, 3)),
      };
      this.tables.set(coder, t);
    }
    return t;
  }

  latent(coder: string, id: number): LatentPayload {
    const r = this.cache.latent(coder, id);
    return {
      id,
      count: r.count,
      frequency: r.frequency,
      max: r.max,
      mean: r.mean,
      histogram: r.histogram,
      top: r.top.map(example),
      intervals: r.intervals.map((iv) => ({ lo: iv.lo, hi: iv.hi, examples: iv.examples.map(example) })),
      logits: r.logits ? { top: r.logits.top.map((t) => [t.token, t.value]), bottom: r.logits.bottom.map((t) => [t.token, t.value]) } : null,
      neighbours: r.neighbours.map((n) => [n.id, n.similarity]),
      ...(r.decoderNorms ? { decoder_norms: r.decoderNorms.map((d): [string, number] => [d.target, d.norm]) } : {}),
    };
  }

  latents(coder: string, chunk: number): LatentChunkPayload | undefined {
    const entry = this.cache.index.coders[coder];
    const start = chunk * CHUNK;
    const end = Math.min(entry?.num_latents ?? 0, start + CHUNK);
    if (!entry || !Number.isInteger(chunk) || start >= end) return undefined;
    const latents: LatentPayload[] = [];
    for (let id = start; id < end; id++) latents.push(this.latent(coder, id));
    const { index } = this.cache;
    const tokens = this.cache.tokens(coder);
    const packed = packLatents(latents, { startRow: index.rows.start, ctxLen: index.ctx_len, before: index.layout.before, tokens });
    const norms = entry.targets ? { decoder_norms: { targets: entry.targets, norms: latents.map((l) => l.decoder_norms!.map(([, n]) => n)) } } : {};
    return { coder, start, count: end - start, tokens, before: index.layout.before, after: index.layout.after, packed: Buffer.from(packed).toString('base64'), ...norms };
  }

  /** The cached rows' token ids (the examples' windows are cut from them in the page). */
  tokenStream(): TokensPayload {
    const { rows, ctx_len } = this.cache.index;
    return { start_row: rows.start, rows: rows.end - rows.start, ctx_len, ids: b64(this.cache.allTokens()) };
  }

  /** The payload at a data path, or undefined. */
  get(path: string): unknown {
    if (path === 'overview') return this.overview();
    if (path === 'vocab') return this.cache.vocab();
    if (path === 'tokens') return this.tokenStream();
    const m = /^coders\/(\d+)\/(table|latents\/(\d+))$/.exec(path);
    const coder = m ? this.coderNames[Number(m[1])] : undefined;
    if (!m || !coder) return undefined;
    return m[2] === 'table' ? this.table(coder) : this.latents(coder, Number(m[3]));
  }

  /** The data file's text: a script that hands the payload to the page, or undefined. */
  script(path: string): string | undefined {
    const payload = this.get(path);
    if (payload === undefined) return undefined;
    return `window.sparsifyData(${JSON.stringify(path)}, ${JSON.stringify(payload)});\n`;
  }

  /** Every data path, for a static export. */
  paths(): string[] {
    const out = ['overview', 'vocab', 'tokens'];
    Object.values(this.cache.index.coders).forEach((c, i) => {
      out.push(`coders/${i}/table`);
      for (let chunk = 0; chunk * CHUNK < c.num_latents; chunk++) out.push(`coders/${i}/latents/${chunk}`);
    });
    return out;
  }
}
