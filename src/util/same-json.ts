/** Whether two JSON-like values (settings, lists of them) are equal by content. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
