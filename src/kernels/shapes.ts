/**
 * Shape rules of the kernel ops. Shapes are tracked where they are known, so a mismatch is a
 * KernelBuildError when the program is built rather than a Python traceback when it runs.
 * Unknown in, unknown out; a symbolic dim against another is trusted.
 */
import { KernelBuildError, type Dim, type Shape } from './types.js';

export function formatShape(s: Shape | undefined): string {
  return s ? `[${s.join(', ')}]` : '[?]';
}

/** A possibly negative dim index as a position in a shape of `rank` dims. */
export function normalizeDim(dim: number, rank: number): number {
  return dim < 0 ? dim + rank : dim;
}

/** Broadcast two known shapes, or throw. */
export function broadcastShapes(a: Shape | undefined, b: Shape | undefined, what: string): Shape | undefined {
  if (!a || !b) return undefined;
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === 1) out.push(y);
    else if (y === 1 || x === y) out.push(x);
    else if (typeof x === 'number' && typeof y === 'number') {
      throw new KernelBuildError(`${what}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
    } else out.push(typeof x === 'number' ? x : y); // symbolic vs other: trust the caller
  }
  return out;
}

/** The shape after reducing `dims` (all dims when undefined). */
export function reducedShape(s: Shape | undefined, dims: number | readonly number[] | undefined, keepdim: boolean): Shape | undefined {
  if (dims === undefined) return [];
  if (!s) return undefined;
  const list = (typeof dims === 'number' ? [dims] : dims).map((d) => normalizeDim(d, s.length));
  return s.flatMap((d, i) => (list.includes(i) ? (keepdim ? [1] : []) : [d]));
}

/** `a @ b` for two 2-D shapes; the inner dims must agree where both are known alike. */
export function matmulShape(a: Shape | undefined, b: Shape | undefined): Shape | undefined {
  if (!a || !b || a.length !== 2 || b.length !== 2) return undefined;
  const [n, k1] = a as [Dim, Dim];
  const [k2, m] = b as [Dim, Dim];
  const comparable = typeof k1 === typeof k2;
  if (k1 !== k2 && comparable) throw new KernelBuildError(`matmul: inner dims differ, ${formatShape(a)} @ ${formatShape(b)}`);
  return [n, m];
}

/** `F.linear(x, weight)`: [..., D] x [M, D] -> [N, M] for 2-D inputs. */
export function linearShape(x: Shape | undefined, weight: Shape | undefined): Shape | undefined {
  const [m, d] = weight ?? [];
  const dx = x?.[x.length - 1];
  if (typeof dx === 'number' && typeof d === 'number' && dx !== d) {
    throw new KernelBuildError(`linear: input width ${dx} but weight is ${formatShape(weight)}`);
  }
  return x && x.length === 2 && m !== undefined ? [x[0]!, m] : undefined;
}

/** The shape with the last two dims swapped (`.mT`). */
export function transposedShape(s: Shape | undefined): Shape | undefined {
  return s && s.length >= 2 ? [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!] : s;
}

/** The shape with `dim` replaced by `size` (topk) or removed (size undefined: max over dim). */
export function replacedDim(s: Shape | undefined, dim: number, size: Dim | undefined): Shape | undefined {
  if (!s) return undefined;
  const at = normalizeDim(dim, s.length);
  return size === undefined ? s.filter((_, i) => i !== at) : s.map((d, i) => (i === at ? size : d));
}

/** The shape with a dim of 1 inserted at `dim`. */
export function unsqueezedShape(s: Shape | undefined, dim: number): Shape | undefined {
  if (!s) return undefined;
  const out = [...s];
  out.splice(dim < 0 ? dim + s.length + 1 : dim, 0, 1);
  return out;
}
