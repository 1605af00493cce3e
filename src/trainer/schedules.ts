/** The k schedule (k decay), in plain numbers computed in TypeScript. Learning-rate schedules are each optimizer's (src/optimizers). */

/** Python's round(): to the nearest integer, halves to even (56.5 -> 56, 57.5 -> 58). */
export function pythonRound(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** k for a batch counter: linear decay from initialK to k over kDecaySteps batches (the reference's `get_current_k`). */
export function currentK(globalStep: number, kDecaySteps: number, initialK: number, k: number): number {
  if (globalStep >= kDecaySteps) return k;
  const progress = globalStep / kDecaySteps;
  return pythonRound(initialK * (1 - progress) + k * progress);
}

/** The k that k decay starts from: min(M, round(10 * D)). */
export function initialK(numLatents: number, dIn: number): number {
  return Math.min(numLatents, pythonRound(dIn * 10));
}
