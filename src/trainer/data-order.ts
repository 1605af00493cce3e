/**
 * Which rows each batch holds: every rank trains on its own contiguous shard of the rows
 * (the remainder that does not divide is dropped), in order in the first epoch and in a
 * seeded permutation of the shard (the same on every machine) in each later one.
 */
import type { BatchRows } from '../bridge/ops.js';
import { seededPermutation } from '../util/shuffle.js';

export class DataOrder {
  private order: { epoch: number; rows: Int32Array } | undefined;

  constructor(
    /** Rows of the whole dataset. */
    private readonly numRows: number,
    private readonly batchSize: number,
    private readonly epochs: number,
    private readonly worldSize: number,
  ) {}

  /** Rows of a rank's shard. */
  get shardRows(): number {
    return Math.floor(this.numRows / this.worldSize);
  }
  /** Batches in one pass over a shard (the last one may be short). */
  get stepsPerEpoch(): number {
    return Math.ceil(this.shardRows / this.batchSize);
  }
  /** Batches of the whole run (every epoch). */
  get totalSteps(): number {
    return this.stepsPerEpoch * this.epochs;
  }
  /**
   * The length of the learning-rate schedules: the reference's `num_batches`, whole batches
   * only (`len(dataset) // batch_size`), although a short last batch is trained on too; times
   * the epochs.
   */
  get scheduleSteps(): number {
    return Math.floor(this.shardRows / this.batchSize) * this.epochs;
  }

  /** The rows of batch `b` of `rank`'s shard. */
  batch(b: number, rank: number): BatchRows {
    const offset = rank * this.shardRows;
    const epoch = Math.floor(b / this.stepsPerEpoch);
    const start = (b % this.stepsPerEpoch) * this.batchSize;
    const end = Math.min(start + this.batchSize, this.shardRows);
    if (epoch === 0) return [offset + start, offset + end];
    if (this.order?.epoch !== epoch) this.order = { epoch, rows: seededPermutation(this.shardRows, epoch) };
    return { rows: Array.from(this.order.rows.subarray(start, end), (r) => offset + r) };
  }

  /** Batch `b` of every rank, in rank order, as one batch (what an all-gather of the ranks' batches holds). */
  allRanks(b: number): BatchRows {
    const rowsOf = (r: BatchRows): number[] => (Array.isArray(r) ? Array.from({ length: r[1] - r[0] }, (_, i) => r[0] + i) : [...(r as { rows: number[] }).rows]);
    return { rows: Array.from({ length: this.worldSize }, (_, r) => rowsOf(this.batch(b, r))).flat() };
  }
}
