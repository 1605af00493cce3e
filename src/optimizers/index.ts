/**
 * The optimizer registry: one file per optimizer (registry.ts lists them), each declaring
 * its state slots, its update in the kernel builder, its step scalars and schedule, its
 * default learning rate, and what a checkpoint must keep of it (optimizer.ts is the
 * contract). The config's choices, the sweep, the trainer's programs and checkpoints read
 * this registry; nothing else names an optimizer.
 */
import * as registered from './registry.js';
import type { Optimizer } from './optimizer.js';

export type { HostState, Optimizer, ParamRef, ScheduleContext, UpdateContext } from './optimizer.js';
export { linearWarmupDecay } from './schedule.js';

/** The name of a registered optimizer. */
export type OptimizerName = (typeof registered)[keyof typeof registered]['name'];

/** The reference's default. */
export const DEFAULT_OPTIMIZER: OptimizerName = 'signum';

/** Every optimizer: the default first, then by name. */
export const OPTIMIZERS: readonly Optimizer<OptimizerName>[] = (Object.values(registered) as Optimizer<OptimizerName>[]).sort((a, b) =>
  a.name === DEFAULT_OPTIMIZER ? -1 : b.name === DEFAULT_OPTIMIZER ? 1 : a.name.localeCompare(b.name),
);

/** Their names, in that order (the config's enum). */
export const OPTIMIZER_NAMES = OPTIMIZERS.map((o) => o.name) as [OptimizerName, ...OptimizerName[]];

/** The optimizer called `name`. */
export function optimizer(name: OptimizerName): Optimizer<OptimizerName> {
  const found = OPTIMIZERS.find((o) => o.name === name);
  if (!found) throw new RangeError(`unknown optimizer '${name}' (registered: ${OPTIMIZER_NAMES.join(', ')})`);
  return found;
}
