/** JSON on the wire: handles travel as {"$h": id}, non-finite floats as {"$f": "inf"}. */

export interface WireHandle {
  $h: number;
  kind: string;
  shape?: number[];
  dtype?: string;
  device?: string;
}

export function encodeRequest(op: string, args: Record<string, unknown>, free: number[]): string {
  return JSON.stringify({ op, args, free }, (_key, value: unknown) => {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      return { $f: Number.isNaN(value) ? 'nan' : value > 0 ? 'inf' : '-inf' };
    }
    if (typeof value === 'bigint') return Number(value);
    return value;
  });
}

export function decodeReply(text: string, adopt: (h: WireHandle) => unknown): unknown {
  return revive(JSON.parse(text) as unknown, adopt);
}

function revive(value: unknown, adopt: (h: WireHandle) => unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => revive(v, adopt));
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    if (typeof obj.$h === 'number') return adopt(obj as unknown as WireHandle);
    if (typeof obj.$f === 'string' && Object.keys(obj).length === 1) return Number(obj.$f.replace('inf', 'Infinity'));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = revive(v, adopt);
    return out;
  }
  return value;
}
