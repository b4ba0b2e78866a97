/**
 * A max-index over node scores for one task shape: a segment tree over positions in the
 * session's node order, so "the highest score, earliest node on ties" is the root, and a node
 * whose state changed is re-scored in O(log n) instead of rescanning the cluster per task.
 */

export class ScoreTree {
  private readonly size: number;
  private readonly best: Float64Array;
  /** Position (in node order) of the best leaf under each tree node. */
  private readonly at: Int32Array;

  constructor(readonly length: number) {
    let size = 1;
    while (size < length) size *= 2;
    this.size = size;
    this.best = new Float64Array(2 * size).fill(-Infinity);
    this.at = new Int32Array(2 * size).fill(-1);
    for (let p = 0; p < size; p++) this.at[size + p] = p;
    for (let i = size - 1; i >= 1; i--) this.at[i] = this.at[2 * i] as number;
  }

  /** Sets the score at a position; -Infinity removes it from consideration. */
  set(position: number, score: number): void {
    let i = this.size + position;
    this.best[i] = score;
    for (i >>= 1; i >= 1; i >>= 1) {
      const l = 2 * i;
      const r = l + 1;
      // Left holds earlier positions, so it wins ties.
      const pick = (this.best[l] as number) >= (this.best[r] as number) ? l : r;
      this.best[i] = this.best[pick] as number;
      this.at[i] = this.at[pick] as number;
    }
  }

  get(position: number): number {
    return this.best[this.size + position] as number;
  }

  /** The best position, or -1 when every score is -Infinity. */
  top(): number {
    return this.best[1] === -Infinity ? -1 : (this.at[1] as number);
  }

  topScore(): number {
    return this.best[1] as number;
  }
}
