/**
 * Selection by threshold, shared by a learned inference threshold (a scalar theta) and
 * jumprelu's inference (theta per latent): the entries of the relu'd `preacts` [N, M] above
 * `theta`, each row padded with zero slots to the batch's largest count (read off the device:
 * one sync), at least one slot wide.
 */
import type { ProgramBuilder, SymTensor } from '../kernels/index.js';
import type { LatentSelection } from './activation.js';

export function thresholdSelection(_g: ProgramBuilder, preacts: SymTensor, theta: SymTensor): LatentSelection {
  const kept = preacts.gt(theta).named('above_threshold');
  const width = kept.sum(-1).max(0).values.clamp(1, null).int().named('width');
  return preacts.mul(kept.typeAs(preacts)).named('thresholded').topk(width, { dim: -1, sorted: false });
}
