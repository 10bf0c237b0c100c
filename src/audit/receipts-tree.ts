import type { FinalOutcome } from '../state/record-batch.ts';
import { MerkleBuilder } from './hash.ts';
import { receiptLeaf } from './trail.ts';

/**
 * A run's receipts Merkle root, built while the run records them, so that sealing a run of a million receipts
 * does not read and hash them all again after the run (about 15 s at 1M; docs/benchmarks.md). Batches are
 * contiguous key ranges read in key order (the database's), numbered 0, 1, 2 ... as they are read; they are
 * answered in any order (concurrency), so each batch's leaves wait until the batches before it are in. The
 * leaves are the ones the sealer makes from the receipts table (receiptLeaf), in the same order as its
 * `ORDER BY key`. The sealer checks the count against the table before it trusts the root.
 */
export class RunReceiptsTree {
  readonly #tree = new MerkleBuilder();
  readonly #waiting = new Map<number, string[]>();
  #next = 0;

  /** Batch number `seq` wrote these receipts (recordBatch's answer), in its key order. */
  recorded(seq: number, receipts: FinalOutcome[]): void {
    if (seq < this.#next || this.#waiting.has(seq)) throw new Error(`receipts tree: batch ${seq} was recorded twice`);
    this.#waiting.set(seq, receipts.map((x) => receiptLeaf({
      key: x.key, op: x.op, status: x.status, payloadHash: x.payloadHash, destinationId: x.destinationId ?? null, errorCode: x.errorCode ?? null, attempt: x.attempt, requestId: x.requestId ?? null,
    })));
    for (let leaves = this.#waiting.get(this.#next); leaves; leaves = this.#waiting.get(this.#next)) {
      this.#waiting.delete(this.#next++);
      for (const l of leaves) this.#tree.add(l);
    }
  }

  /** The root of batches 0 to `batches - 1`, or null while one of them is not recorded. */
  root(batches: number): { count: number; root: string } | null {
    return this.#next === batches ? { count: this.#tree.count, root: this.#tree.root() } : null;
  }
}
