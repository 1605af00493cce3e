/** The device sums the coder metrics share (each accumulated once per batch, whoever needs it). */
import type { DeviceSum } from './metric.js';

/** Tokens evaluated (every metric's denominator; always kept). */
export const TOKENS: DeviceSum = { name: 'tokens', shape: 'scalar', add: (_g, sum, b) => sum.add_(b.y.size(0)) };

/** Each batch's fvu, as training computes it. */
export const FVU_SUM: DeviceSum = { name: 'fvu_sum', shape: 'scalar', add: (_g, sum, b) => sum.add_(b.e.pow(2).sum().div(b.totalVariance)) };

/** sum |y - y_hat|^2 in float64. */
export const SQ_ERR: DeviceSum = { name: 'sq_err', shape: 'scalar', add: (_g, sum, b) => sum.add_(b.e.to('float64').pow(2).sum()) };

/** sum |y|^2 in float64. */
export const SUM_Y2: DeviceSum = { name: 'sum_y2', shape: 'scalar', add: (_g, sum, b) => sum.add_(b.y64.pow(2).sum()) };

/** sum y per dimension in float64; read as |sum y|^2. */
export const SUM_Y: DeviceSum = { name: 'sum_y', shape: 'width', add: (_g, sum, b) => sum.add_(b.y64.sum(0)), read: (sum) => sum.pow(2).sum() };

/** Active latents, summed over tokens. */
export const L0_SUM: DeviceSum = { name: 'l0', shape: 'scalar', add: (_g, sum, b) => sum.add_(b.fired.sum()) };

/** Per latent, the tokens it fired on. */
export const FIRE_COUNTS: DeviceSum = { name: 'fire_counts', shape: 'latents', add: (_g, sum, b) => sum.indexAdd_(0, b.indices.flatten(), b.fired.flatten().to('int64')) };
