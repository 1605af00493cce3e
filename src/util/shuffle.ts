/** A seeded permutation, the same on every machine and rank (mulberry32 and Fisher-Yates). */

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * 0..n-1 in an order fixed by `seed`.
 *
 * @example
 * seededPermutation(5, 1); // the same five indices, shuffled, on every call
 */
export function seededPermutation(n: number, seed: number): Int32Array {
  const out = Int32Array.from({ length: n }, (_, i) => i);
  const random = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}
