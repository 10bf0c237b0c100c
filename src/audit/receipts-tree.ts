import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { FinalOutcome } from '../state/record-batch.ts';
import { MerkleBuilder } from './hash.ts';
import { getPseudonymKey, pseudonym } from './keys.ts';
import { receiptLeaf } from './receipt-leaf.ts';

/** A batch's receipt leaves as columns: what the worker thread needs, cloned in a few arrays, not 5,000 objects. */
export interface LeafColumns {
  key: string[];
  op: string[];
  status: string[];
  payloadHash: Array<string | null>;
  destinationId: Array<string | null>;
  errorCode: Array<string | null>;
  attempt: number[];
  requestId: Array<string | null>;
}

/**
 * Receipts from which a run hashes them on a worker thread. A leaf is three SHA-256 computations (the key's
 * pseudonym, the leaf, about one interior node): about 8 s of a 1M-record first sync on the thread that also
 * reads, sends and records the batches (bench:sync), so a large run hands them to a thread of their own. A small
 * run is not worth the thread's start (tens of milliseconds).
 */
export const OFF_THREAD_FROM = 20_000;

/**
 * A run's receipts Merkle root, built while the run records them, so that sealing a run of a million receipts
 * does not read and hash them all again after the run (about 15 s at 1M; docs/benchmarks.md). Batches are
 * contiguous key ranges read in key order (the database's), numbered 0, 1, 2 ... as they are read; they are
 * answered in any order (concurrency), so each batch's leaves wait until the batches before it are in. The
 * leaves are the ones the sealer makes from the receipts table (receiptLeaf), in the same order as its
 * `ORDER BY key`. The sealer checks the count against the table before it trusts the root.
 *
 * With `offThread` the leaves are hashed on a worker thread, in the same order, with the same key: the same
 * root. Should that thread fail, root() answers null and the seal computes the root from the table.
 */
export class RunReceiptsTree {
  readonly #tree = new MerkleBuilder();
  readonly #waiting = new Map<number, FinalOutcome[]>();
  #next = 0;
  #worker: Worker | null = null;
  #offThread = false;
  #failed: Error | null = null;

  constructor(opts: { offThread?: boolean } = {}) {
    if (!opts.offThread) return;
    this.#offThread = true;
    this.#worker = new Worker(new URL('./receipts-tree-worker.ts', import.meta.url), { workerData: { pseudonymKey: getPseudonymKey() } });
    this.#worker.on('error', (err) => {
      this.#failed = err;
    });
  }

  /** Why the worker thread failed, if it did (root() then answers null). */
  get failure(): Error | null {
    return this.#failed;
  }

  /** Batch number `seq` wrote these receipts (recordBatch's answer), in its key order. */
  recorded(seq: number, receipts: FinalOutcome[]): void {
    if (seq < this.#next || this.#waiting.has(seq)) throw new Error(`receipts tree: batch ${seq} was recorded twice`);
    // Checked here, on either thread, so that a receipt the leaf cannot be made of fails its batch.
    for (const x of receipts) if (!Number.isFinite(x.attempt)) throw new Error(`receipt of ${pseudonym(x.key)}: attempt ${x.attempt} is not a number`);
    this.#waiting.set(seq, receipts);
    for (let batch = this.#waiting.get(this.#next); batch; batch = this.#waiting.get(this.#next)) {
      this.#waiting.delete(this.#next++);
      this.#add(batch);
    }
  }

  #add(batch: FinalOutcome[]): void {
    if (!this.#offThread) {
      for (const x of batch) this.#tree.add(receiptLeaf({ key: x.key, op: x.op, status: x.status, payloadHash: x.payloadHash, destinationId: x.destinationId ?? null, errorCode: x.errorCode ?? null, attempt: x.attempt, requestId: x.requestId ?? null }));
      return;
    }
    if (!this.#worker || this.#failed || !batch.length) return;
    const columns: LeafColumns = { key: [], op: [], status: [], payloadHash: [], destinationId: [], errorCode: [], attempt: [], requestId: [] };
    for (const x of batch) {
      columns.key.push(x.key);
      columns.op.push(x.op);
      columns.status.push(x.status);
      columns.payloadHash.push(x.payloadHash);
      columns.destinationId.push(x.destinationId ?? null);
      columns.errorCode.push(x.errorCode ?? null);
      columns.attempt.push(x.attempt);
      columns.requestId.push(x.requestId ?? null);
    }
    this.#worker.postMessage({ type: 'leaves', columns });
  }

  /** The root of batches 0 to `batches - 1`, or null while one of them is not recorded (or the thread failed). */
  async root(batches: number): Promise<{ count: number; root: string } | null> {
    if (this.#next !== batches) return null;
    if (!this.#offThread) return { count: this.#tree.count, root: this.#tree.root() };
    const worker = this.#worker;
    if (!worker || this.#failed) return null;
    const answer = once(worker, 'message') as Promise<[{ count: number; root: string }]>;
    worker.postMessage({ type: 'root' });
    // A thread that fails or ends before it answers: no root (once() rejects on 'error').
    const ended = once(worker, 'exit').then(() => [null] as const);
    try {
      return (await Promise.race([answer, ended]))[0];
    } catch {
      return null;
    }
  }

  /** Stops the worker thread (always, once the run is done with the tree). */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = null;
    if (worker) await worker.terminate();
  }
}
