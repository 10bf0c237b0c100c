import { Worker } from 'node:worker_threads';
import type { FinalOutcome } from '../state/record-batch.ts';
import { MerkleBuilder } from './hash.ts';
import { getPseudonymKey, pseudonymizer } from './keys.ts';
import { packLeaves, receiptLeafWith } from './receipt-leaf.ts';

/**
 * Planned items from which a run hashes its receipts on a worker thread. A leaf is three SHA-256 computations
 * (the key's pseudonym, the leaf, about one interior node), about 5 s of a 1M-record first sync on the one
 * thread that also reads, sends and records the batches: it was the delivery's critical path (bench:sync,
 * docs/benchmarks.md). A small run is not worth the thread's start (tens of milliseconds).
 */
export const OFF_THREAD_FROM = 20_000;
/**
 * Batches handed to the thread and not yet hashed before recorded() waits: the thread's queue, and so its
 * memory, stays a few batches whatever the delivery's pace.
 */
const MAX_QUEUED = 2;
/**
 * The thread holds its modules (about 12 MB of heap with their type stripping), a few packed batches and the
 * tree's O(log n) stack; at 8 MB of old generation it ran out of memory, and then the seal reads the root from
 * the table.
 */
const THREAD_LIMITS = { maxOldGenerationSizeMb: 24, maxYoungGenerationSizeMb: 8 };

/**
 * A run's receipts Merkle root, built while the run records them, so that sealing a run of a million receipts
 * does not read and hash them all again after the run (about 15 s at 1M; docs/benchmarks.md). Batches are
 * contiguous key ranges read in key order (the database's), numbered 0, 1, 2 ... as they are read; they are
 * answered in any order (concurrency), so each batch's leaves wait until the batches before it are in. The
 * leaves are the ones the sealer makes from the receipts table (receiptLeaf), in the same order as its
 * `ORDER BY key`. The sealer checks the count against the table before it trusts the root.
 *
 * With `offThread` the leaves are hashed on a worker thread (receipts-tree-worker.ts), in the same order, under
 * the same key: the same root. Should that thread fail, root() answers null and the seal computes the root from
 * the table, which is slower and just as right. close() ends the thread; call it whatever happened.
 */
export class RunReceiptsTree {
  readonly #tree = new MerkleBuilder();
  readonly #waiting = new Map<number, FinalOutcome[]>();
  #next = 0;
  #worker: Worker | null = null;
  #offThread = false;
  #failed: Error | null = null;
  #queued = 0;
  #wake: Array<() => void> = [];
  /** Root requests sent to the thread, answered in order (one port keeps the order). */
  #rootAnswers: Array<(r: { count: number; root: string } | null) => void> = [];

  constructor(opts: { offThread?: boolean } = {}) {
    if (!opts.offThread) return;
    this.#offThread = true;
    const worker = new Worker(new URL('./receipts-tree-worker.ts', import.meta.url), { workerData: { pseudonymKey: getPseudonymKey() }, resourceLimits: THREAD_LIMITS });
    this.#worker = worker;
    worker.on('message', (m: { type: 'added' } | { type: 'root'; count: number; root: string }) => {
      if (m.type === 'added') {
        this.#queued--;
        this.#release();
      } else {
        this.#rootAnswers.shift()?.({ count: m.count, root: m.root });
      }
    });
    // A thread that ends after close() (which lets go of it first) has not failed.
    const fail = (err: Error) => {
      if (this.#worker) this.#failed ??= err;
      this.#release();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the receipts tree thread exited (code ${code})`)));
  }

  /** Why the worker thread failed, if it did (root() then answers null). */
  get failure(): Error | null {
    return this.#failed;
  }

  /** Wakes what waits for the thread: recorded() for room in its queue, root() for its answer (none now). */
  #release(): void {
    for (const wake of this.#wake.splice(0)) wake();
    if (!this.#worker || this.#failed) for (const answer of this.#rootAnswers.splice(0)) answer(null);
  }

  /**
   * Batch number `seq` wrote these receipts (recordBatch's answer), in its key order. Off the thread, resolves
   * once the thread's queue is short enough to take more.
   */
  async recorded(seq: number, receipts: FinalOutcome[]): Promise<void> {
    if (seq < this.#next || this.#waiting.has(seq)) throw new Error(`receipts tree: batch ${seq} was recorded twice`);
    // Checked here, whichever thread hashes, so that a receipt the leaf cannot be made of fails its batch.
    for (const [i, x] of receipts.entries()) if (!Number.isFinite(x.attempt)) throw new Error(`receipts tree: receipt ${i} of batch ${seq} has an attempt ${x.attempt} that is not a number`);
    this.#waiting.set(seq, receipts);
    const pseudonymOf = this.#offThread ? null : pseudonymizer();
    for (let batch = this.#waiting.get(this.#next); batch; batch = this.#waiting.get(this.#next)) {
      this.#waiting.delete(this.#next++);
      if (pseudonymOf) {
        for (const x of batch) this.#tree.add(receiptLeafWith(x, pseudonymOf));
      } else if (this.#worker && !this.#failed && batch.length) {
        this.#worker.postMessage({ type: 'leaves', packed: packLeaves(batch) });
        this.#queued++;
      }
    }
    while (this.#worker && !this.#failed && this.#queued > MAX_QUEUED) await new Promise<void>((wake) => this.#wake.push(wake));
  }

  /** The root of batches 0 to `batches - 1`, or null while one of them is not recorded (or the thread failed). */
  async root(batches: number): Promise<{ count: number; root: string } | null> {
    if (this.#next !== batches) return null;
    if (!this.#offThread) return { count: this.#tree.count, root: this.#tree.root() };
    const worker = this.#worker;
    if (!worker || this.#failed) return null;
    const answer = new Promise<{ count: number; root: string } | null>((resolve) => this.#rootAnswers.push(resolve));
    worker.postMessage({ type: 'root' });
    return answer;
  }

  /** Ends the worker thread, if any; the tree answers no root afterwards. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#worker = null;
    this.#release();
    await worker.terminate();
  }
}
