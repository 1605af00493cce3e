/**
 * Where a cross-layer transcoder's layers train with distributed modules: which rank owns
 * each layer (its encoder as a source, and as a target its bias and every decoder into it).
 * Pure placement; the programs that train and save in that layout are in programs.ts and
 * cross-layer-layout.ts.
 */
import { ConfigError } from '../config/errors.js';

/**
 * The rank of each of n layers: dealt to the ranks back and forth (0, 1, .., W-1, W-1, .., 0,
 * ..), so that layer j, whose target has j + 1 decoders, pairs with layer n-1-j and every rank
 * holds about as many decoders as the others (with n = 2W exactly as many).
 *
 * @example
 * crossLayerOwners(4, 2); // [0, 1, 1, 0]
 */
export function crossLayerOwners(n: number, worldSize: number): number[] {
  if (n < worldSize) throw new ConfigError(`distribute_modules: a cross-layer transcoder over ${n} layers cannot spread across ${worldSize} ranks (each rank owns at least one layer); use at most ${n} ranks, or data parallel`);
  return Array.from({ length: n }, (_, p) => {
    const round = Math.floor(p / worldSize);
    const at = p % worldSize;
    return round % 2 === 0 ? at : worldSize - 1 - at;
  });
}

/** The layers (indices, in order) that `rank` owns. */
export function ownedLayers(owners: readonly number[], rank: number): number[] {
  return owners.flatMap((r, j) => (r === rank ? [j] : []));
}
