/**
 * The activation registry: one file per activation (registry.ts lists them), each declaring
 * its selection in the kernel builder, its gradient rule, its own parameters, its config
 * check and what inference does (activation.ts is the contract). The config's choices, the
 * sweep, the encoders, the coder files' checks and --help all read this registry; nothing
 * else names an activation. Not here: the encoder and decoder around the selection
 * (src/math).
 */
import * as registered from './registry.js';
import type { Activation } from './activation.js';

export type { Activation, ActivationParam, LatentSelection, LearnedThreshold, RaggedRows } from './activation.js';
export { asRows, flatEntries } from './ragged.js';
export { thresholdSelection } from './threshold-selection.js';

type Registered = (typeof registered)[keyof typeof registered];

/** The name of a registered activation. */
export type ActivationName = Registered['name'];

/** The names of the parameters registered activations add. */
export type ActivationParamName = Registered['params'][number]['name'];

/** The reference's default. */
export const DEFAULT_ACTIVATION: ActivationName = 'topk';

/** Every activation: the default first, then by name. */
export const ACTIVATIONS: readonly Activation<ActivationName, ActivationParamName>[] = Object.values(registered).sort((a, b) =>
  a.name === DEFAULT_ACTIVATION ? -1 : b.name === DEFAULT_ACTIVATION ? 1 : a.name.localeCompare(b.name),
);

/** Their names, in that order (the config's enum). */
export const ACTIVATION_NAMES = ACTIVATIONS.map((a) => a.name) as [ActivationName, ...ActivationName[]];

/** The activation called `name`. */
export function activation(name: ActivationName): Activation<ActivationName, ActivationParamName> {
  const found = ACTIVATIONS.find((a) => a.name === name);
  if (!found) throw new RangeError(`unknown activation '${name}' (registered: ${ACTIVATION_NAMES.join(', ')})`);
  return found;
}

/**
 * Whether a coder of this activation learns an inference threshold: `setting` when given
 * (`--inference_threshold`), else the activation's default (on for batchtopk).
 */
export function learnsThreshold(name: ActivationName, setting?: boolean): boolean {
  return setting ?? activation(name).learnedThreshold?.byDefault ?? false;
}
