import type { ReceiptLeaf } from '../state/audit.ts';
import { MerkleBuilder } from './hash.ts';
import { receiptLeaf } from './trail.ts';

/**
 * A run's receipts Merkle root, built while the run records them, so that sealing a run of a million receipts
 * does not read and hash them all again after the run (about 15 s at 1M; docs/benchmarks.md). Batches are
 * contiguous key ranges read in key order (the database's), numbered as they are read; they are answered in
 * any order (concurrency), so each batch's leaves wait until the batches before it are in. The leaves are the
 * ones the sealer makes from the receipts table (receiptLeaf), in the same order as its `ORDER BY key`.
 *
 * The root is offered only when every receipt of the run went through here: a receipt written any other way
 * (records closed as deferred, interrupted or in doubt after the delivery) makes it void, and the sealer
 * recomputes from the table. The sealer also checks the count against the table before it trusts the root.
 */
export class RunReceiptsTree {
  readonly #tree = new MerkleBuilder();
  readonly #waiting = new Map<number, string[]>();
  #next = 0;
  #read = 0;
  #void = false;

  /** A batch was read for sending: its number. */
  batchRead(): number {
    return this.#read++;
  }

  /** Batch number `seq` (0, 1, 2 ... in key order) wrote these receipts, in its key order. */
  recorded(seq: number, receipts: ReceiptLeaf[]): void {
    if (this.#void) return;
    if (seq < this.#next || this.#waiting.has(seq)) {
      this.#void = true;
      return;
    }
    this.#waiting.set(seq, receipts.map(receiptLeaf));
    for (let leaves = this.#waiting.get(this.#next); leaves; leaves = this.#waiting.get(this.#next)) {
      this.#waiting.delete(this.#next++);
      for (const l of leaves) this.#tree.add(l);
    }
  }

  /** Receipts were written that did not go through `recorded`. */
  invalidate(): void {
    this.#void = true;
  }

  /** The root when every batch read was recorded here and nothing else wrote receipts, else null. */
  result(): { count: number; root: string } | null {
    if (this.#void || this.#waiting.size > 0 || this.#next !== this.#read) return null;
    return { count: this.#tree.count, root: this.#tree.root() };
  }
}
