/**
 * Which rows of a prepared (shuffled) dataset a run trains on, and which it leaves for
 * evaluation: the first rows up to --max_examples, less the last --holdout share; and how many
 * whole rows a token budget holds.
 */
import { SparsifyError } from '../bridge/errors.js';

/** The number of leading rows a run trains on. */
export function trainingRows(numRows: number, options: { maxExamples?: number | undefined; holdout?: number | undefined }): number {
  const heldOut = Math.floor(numRows * (options.holdout ?? 0));
  return Math.min(options.maxExamples ?? numRows, numRows - heldOut);
}

/**
 * The whole rows `maxTokens` tokens hold: at most that many tokens, never more. Fewer than one
 * row's worth is an error naming `flag`.
 */
export function rowsWithin(maxTokens: number, ctxLen: number, flag = '--max_tokens'): number {
  const rows = Math.floor(maxTokens / ctxLen);
  if (rows < 1) throw new SparsifyError(`${flag} ${maxTokens} is less than one row of ${ctxLen} tokens; give at least ${ctxLen}`);
  return rows;
}
