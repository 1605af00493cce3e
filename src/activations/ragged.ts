/**
 * Ragged selections (see {@link LatentSelection}): made from the flat positions an activation
 * keeps, turned into rows (padded) for the callers that want one row per token, and read as
 * flat entries by the code that handles both layouts alike.
 */
import type { ProgramBuilder, SymScalar, SymTensor } from '../kernels/index.js';
import type { LatentSelection, RaggedRows } from './activation.js';

/**
 * The ragged selection of the entries at `positions` (flat, row-major indices into an
 * [N, M] matrix, increasing) whose values are `values`.
 */
export function raggedFromPositions(positions: SymTensor, values: SymTensor, tokens: SymScalar, numLatents: SymScalar): LatentSelection {
  const rows = positions.floorDiv(numLatents).named('kept_rows');
  const indices = positions.mod(numLatents).named('kept_latents');
  const counts = rows.bincount(tokens).named('kept_counts');
  const offsets = counts.cumsum(0).sub(counts).named('kept_offsets');
  return { values, indices, ragged: { rows, offsets } };
}

/**
 * A ragged selection as rows: each token's entries, then zero slots up to the batch's largest
 * count (read off the device: one sync), at least one slot wide. A selection in rows is
 * returned as it is.
 */
export function asRows(f: ProgramBuilder, selection: LatentSelection, tokens: SymScalar): LatentSelection {
  if (!selection.ragged) return selection;
  const { rows, offsets } = selection.ragged;
  const { values, indices } = selection;
  const counts = rows.bincount(tokens).named('row_counts');
  const slot = f.arange(0, rows.size(0), 1, rows).sub(offsets.select(rows)).named('slot');
  const width = counts.max(0).values.clamp(1, null).int().named('width');
  const paddedValues = f.zeros([tokens, width], { dtype: 'float32', device: values }).typeAs(values).named('row_values');
  paddedValues.setAt2_(rows, slot, values);
  const paddedIndices = f.zeros([tokens, width], { dtype: 'int64', device: indices }).named('row_indices');
  paddedIndices.setAt2_(rows, slot, indices);
  return { values: paddedValues, indices: paddedIndices };
}

/** A selection's entries as flat lists, each with its token: `rows` [T], `indices` [T], `values` [T] (rows layout: every slot, row by row). */
export function flatEntries(f: ProgramBuilder, selection: LatentSelection): { rows: SymTensor; indices: SymTensor; values: SymTensor } {
  if (selection.ragged) return { rows: selection.ragged.rows, indices: selection.indices, values: selection.values };
  const { values, indices } = selection;
  const rows = f.arange(0, indices.size(0), 1, indices).repeatInterleave(indices.size(1)).named('slot_rows');
  return { rows, indices: indices.flatten(), values: values.flatten() };
}

export type { RaggedRows };
