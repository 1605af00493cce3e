/**
 * The explorer's hash routes for a coder: by its name (`#/c/layers.1`, a sweep's
 * `#/c/layers.1%2Fk%3D32`), which stays right when a cache gains or loses coders; a route by
 * index (`#/c/1`) still resolves.
 */
import type { OverviewPayload } from '../payloads.js';

/** `#/c/<name>`, and a latent under it. */
export const coderRoute = (ov: OverviewPayload, index: number): string => `#/c/${encodeURIComponent(ov.coders[index]!.name)}`;
export const latentRoute = (ov: OverviewPayload, index: number, id: number): string => `${coderRoute(ov, index)}/l/${id}`;

/** The coder a route segment names: by name first, else by index; undefined when neither. */
export function coderIndex(ov: OverviewPayload, segment: string): number | undefined {
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  const byName = ov.coders.findIndex((c) => c.name === name);
  if (byName >= 0) return byName;
  return /^\d+$/.test(segment) && Number(segment) < ov.coders.length ? Number(segment) : undefined;
}
