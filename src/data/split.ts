/**
 * Which rows of a prepared (shuffled) dataset a run trains on, and which it leaves for
 * evaluation: the first rows up to --max_examples, less the last --holdout share.
 */

/** The number of leading rows a run trains on. */
export function trainingRows(numRows: number, options: { maxExamples?: number | undefined; holdout?: number | undefined }): number {
  const heldOut = Math.floor(numRows * (options.holdout ?? 0));
  return Math.min(options.maxExamples ?? numRows, numRows - heldOut);
}
