import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { Change, DestinationSession, FollowUpItem, FollowUpOutcome, RecordOutcome } from '../../destinations/types.ts';
import { OFF_THREAD_FROM, RunReceiptsTree } from '../audit/receipts-tree.ts';
import { BudgetExhaustedError, describeError, SegsyncError } from '../errors.ts';
import { chunk } from '../db/chunk.ts';
import type { Logger } from '../log.ts';
import type { Actor } from '../state/actor.ts';
import { deliveredByDestinationId } from '../state/delivered-pages.ts';
import { markSwept, pendingFollowUps, recordFollowUps, sweptSince } from '../state/followups.ts';
import { readBatch, type ItemRow } from '../state/read-batch.ts';
import { recordBatch, type FinalOutcome } from '../state/record-batch.ts';
import { transition } from '../state/transition.ts';
import { useDeliveryHeapGrowth } from './heap.ts';
import { NotSentError, withRetries } from './retry.ts';

export interface DeliverOptions {
  pool: pg.Pool;
  schema: string;
  mapping: string;
  runId: number;
  actor: Actor;
  session: DestinationSession;
  /** The run's planned items: a large run hashes its receipts tree on a thread of its own. */
  planned: number;
  batchSize: number;
  concurrency: number;
  deadAfter: number;
  /** Receipts by COPY (PostgreSQL server) or INSERT (embedded). */
  copy: boolean;
  /** A graceful stop: no new batch, no new retry; batches in flight finish and are recorded. */
  signal: AbortSignal;
  /** Handed to the destination's calls: aborts requests in flight (a forced stop). Default: never. */
  forceSignal?: AbortSignal;
  log: Logger;
  onProgress?: (done: number) => void;
}

export interface FollowUpCounts {
  done: number;
  failed: number;
  deferred: number;
}

export interface DeliverResult {
  delivered: number;
  failed: number;
  /** Sent and no answer recorded: resent next run. */
  inDoubt: number;
  followUps: FollowUpCounts;
  /**
   * Why the run stopped early: budget spent, stopped (signal), the destination kept failing whole batches,
   * or an error of segsync's own (a ledger write failed): then every worker stopped and was awaited.
   */
  stoppedBy: 'budget' | 'abort' | 'circuit' | 'error' | null;
  stopReason: string | null;
  /** The error that stopped the run (stoppedBy 'error'). */
  error?: unknown;
  /**
   * Every planned item was read, sent and recorded with its receipt (none deferred, no batch left sending):
   * the run has nothing left to close.
   */
  allRecorded: boolean;
  /**
   * The Merkle root of the run's receipts, built as each batch was recorded (the audit seal takes it): only
   * when allRecorded, since the receipts the run closes afterwards do not go through it.
   */
  receipts: { count: number; root: string } | null;
}

/** A delivery that sent nothing (a run with nothing planned). */
export function noDelivery(): DeliverResult {
  return { delivered: 0, failed: 0, inDoubt: 0, followUps: { done: 0, failed: 0, deferred: 0 }, stoppedBy: null, stopReason: null, allRecorded: false, receipts: null };
}

/** Whole batches failing in a row before the run stops instead of burning the destination's budget. */
const CIRCUIT_LIMIT = 3;
/** Sends of one record within a run when the destination says its failure is retryable (row locks). */
const RECORD_ATTEMPTS = 3;
const RECORD_RETRY_DELAY_MS = 500;
/** Follow-up objects changed this long before the last sweep are looked at again (clock skew, slow indexing). */
const SWEEP_OVERLAP_MS = 60_000;

const never = new AbortController().signal;

/**
 * Sends the run's planned items in key order, a batch per free worker, all workers in one abort scope: a
 * stop (signal, budget, circuit) or an error in any worker stops the others from taking new batches, every
 * worker is awaited, and only then does the caller close the unsent items and release the lock. Each batch
 * is marked sending before its request leaves; its outcomes are recorded (receipts + delivered state + the
 * batch answered) in one transaction, and an answer that came back is always recorded, whatever stopped the
 * run meanwhile. Follow-up work of the confirmed records (tickets, Cases) is applied after each batch and
 * recorded on its own.
 */
export async function deliverPlanned(o: DeliverOptions): Promise<DeliverResult> {
  useDeliveryHeapGrowth();
  const result = noDelivery();
  const reading = { read: 0, recorded: 0, deferred: false, exhausted: false };
  const receipts = new RunReceiptsTree({ offThread: o.planned >= OFF_THREAD_FROM });
  const scope = new AbortController();
  const stop = (by: NonNullable<DeliverResult['stoppedBy']>, reason: string) => {
    if (!result.stoppedBy) Object.assign(result, { stoppedBy: by, stopReason: reason });
    scope.abort();
  };
  const onStop = () => stop('abort', 'the run was stopped (shutdown or signal)');
  if (o.signal.aborted) onStop();
  o.signal.addEventListener('abort', onStop, { once: true });
  let consecutiveBatchFailures = 0;

  const sendBatch = async ({ seq, items }: { seq: number; items: ItemRow[] }) => {
    const batch = { firstKey: items[0]!.key, lastKey: items[items.length - 1]!.key, size: items.length };
    await transition(o.pool, o.schema, { items: { run: o.runId, mapping: o.mapping, ...batch } }, 'sending', o.actor, null);
    const outcomes = await sendWithRetries(o, items, scope.signal);
    if (outcomes.length > 0 && outcomes.every((x) => x.status === 'failed')) {
      // The code only: a record's message can quote its values, and this reason goes on every unsent receipt.
      if (++consecutiveBatchFailures >= CIRCUIT_LIMIT) stop('circuit', `${CIRCUIT_LIMIT} batches in a row failed entirely; last error code: ${outcomes[0]?.errorCode}`);
    } else if (outcomes.some((x) => x.status === 'delivered')) {
      consecutiveBatchFailures = 0;
    }
    // Deferred records end the run: the budget ran out (a BudgetExhaustedError defers the whole batch, and a
    // destination may defer some records itself). After a stop they are interrupted instead, by the caller.
    const deferred = outcomes.find((x) => x.status === 'deferred');
    if (deferred && !o.signal.aborted) stop('budget', deferred.errorMessage ?? 'the destination deferred the rest of the run');
    if (deferred) reading.deferred = true;
    const followUps = o.session.followUps ?? null;
    const written = await recordBatch(o.pool, { schema: o.schema, mapping: o.mapping, runId: o.runId, deadAfter: o.deadAfter, outcomes, copy: o.copy, batch, actor: o.actor, followUpKind: followUps?.kind ?? null });
    await receipts.recorded(seq, written);
    reading.recorded++;
    for (const x of outcomes) {
      if (x.status === 'delivered') result.delivered++;
      else if (x.status === 'failed') result.failed++;
      else if (x.status === 'in_doubt') result.inDoubt++;
    }
    o.onProgress?.(result.delivered + result.failed + result.inDoubt);
    if (followUps) {
      const byKey = new Map(items.map((r) => [r.key, r]));
      const work: FollowUpItem[] = [];
      for (const x of outcomes) {
        const id = x.destinationId ?? byKey.get(x.key)?.destination_id ?? null;
        if (x.status === 'delivered' && id) work.push({ key: x.key, destinationId: id, payload: byKey.get(x.key)!.op === 'remove' ? null : byKey.get(x.key)!.after });
      }
      await applyFollowUps(o, work, result.followUps, scope.signal, stop);
    }
  };

  const batches = readBatches(o, scope.signal, reading);
  const worker = async () => {
    try {
      for (;;) {
        if (scope.signal.aborted) return;
        const next = await batches.next();
        if (next.done) return;
        await sendBatch(next.value);
      }
    } catch (err) {
      // segsync's own failure (the ledger could not be written): stop everyone; the batch stays marked
      // sending, so its records are closed in doubt, never as "not sent".
      o.log.error({ err: describeError(err) }, 'delivery stopped: a worker failed');
      if (!result.error) result.error = err;
      stop('error', `delivery stopped: ${err instanceof SegsyncError ? err.code : 'UNEXPECTED'}: ${err instanceof Error ? err.message.slice(0, 300) : String(err)}`);
    }
  };
  try {
    try {
      await Promise.all(Array.from({ length: o.concurrency }, worker));
    } finally {
      o.signal.removeEventListener('abort', onStop);
    }
    if (o.signal.aborted) stop('abort', 'the run was stopped (shutdown or signal)');
    result.allRecorded = result.stoppedBy === null && reading.exhausted && !reading.deferred && reading.recorded === reading.read;
    if (result.allRecorded) {
      result.receipts = await receipts.root(reading.read);
      if (receipts.failure) o.log.warn({ err: describeError(receipts.failure) }, 'the receipts tree thread failed: the seal computes the root from the table');
    }
    return result;
  } finally {
    await receipts.close();
  }
}

/**
 * The run's planned items in key order, one batch per query (keyset pagination): a worker that is free takes
 * the next batch, and no more than one batch per worker plus the one being read is held in memory.
 */
async function* readBatches(o: DeliverOptions, stopped: AbortSignal, reading: { read: number; exhausted: boolean }): AsyncGenerator<{ seq: number; items: ItemRow[] }> {
  let lastKey: string | null = null;
  while (!stopped.aborted) {
    const rows = await readBatch(o.pool, o.schema, o.runId, lastKey, o.batchSize);
    if (!rows.length) {
      reading.exhausted = true;
      return;
    }
    lastKey = rows[rows.length - 1]!.key;
    yield { seq: reading.read++, items: rows };
  }
}

/**
 * The change as the destination gets it. Its attempt counts the definite failure answers this very change
 * got, in earlier runs too: a new attempt never carries an id a receiver may have cached a failure under,
 * while a resend after no answer (in doubt, a whole-batch retry) keeps its attempt and so its ids.
 */
function toChange(r: ItemRow, attempt: number): Change {
  return { key: r.key, op: r.op, before: r.before, after: r.after, payloadHash: r.payload_hash, destinationId: r.destination_id, attempt: attempt + r.prior_failures };
}

/** How a whole-batch failure that retries did not cure lands on its records. */
function settleThrown(err: unknown): Pick<RecordOutcome, 'status' | 'errorCode' | 'errorMessage'> {
  if (err instanceof BudgetExhaustedError) return { status: 'deferred', errorCode: err.code, errorMessage: err.message };
  // The run was stopped before the batch's first attempt: it never left.
  if (err instanceof NotSentError) return { status: 'deferred', errorCode: 'INTERRUPTED', errorMessage: 'the run was stopped before this batch was sent' };
  if (err instanceof SegsyncError) return { status: err.inDoubt ? 'in_doubt' : 'failed', errorCode: err.code, errorMessage: err.message };
  return { status: 'failed', errorCode: 'UNEXPECTED', errorMessage: err instanceof Error ? err.message : String(err) };
}

/**
 * One batch through the destination: whole-batch failures retried under the engine's policy (retry.ts),
 * then records the destination calls retryable sent again, up to RECORD_ATTEMPTS. Returns one outcome per
 * item; never throws for destination errors.
 */
async function sendWithRetries(o: DeliverOptions, items: ItemRow[], stopped: AbortSignal): Promise<FinalOutcome[]> {
  const final = new Map<string, FinalOutcome>();
  const settle = (r: ItemRow, x: RecordOutcome, attempt: number, sentAt: Date) => final.set(r.key,
    { ...x, attempt: attempt + r.prior_failures, sentAt, op: r.op, payloadHash: r.payload_hash, stateExists: r.state_exists, priorFailures: r.prior_failures, destinationId: x.destinationId ?? r.destination_id });
  let pending = items;
  for (let attempt = 1; pending.length && attempt <= RECORD_ATTEMPTS; attempt++) {
    const sentAt = new Date();
    let outcomes: RecordOutcome[];
    try {
      const changes = pending.map((r) => toChange(r, attempt));
      outcomes = (await withRetries(() => o.session.deliver(changes, o.forceSignal ?? never), {
        signal: stopped, log: o.log, what: 'destination batch', context: { batch: pending.length },
      })).outcomes;
    } catch (err) {
      const s = settleThrown(err);
      for (const r of pending) settle(r, { key: r.key, ...s }, attempt, sentAt);
      break;
    }
    // Outcomes may come in any order; most destinations keep the batch's, and then no lookup table is built.
    let byKey: Map<string, RecordOutcome> | null = null;
    const retry: ItemRow[] = [];
    let wait = RECORD_RETRY_DELAY_MS * attempt;
    for (const [i, r] of pending.entries()) {
      const x = outcomes[i]?.key === r.key ? outcomes[i] : (byKey ??= new Map(outcomes.map((y) => [y.key, y]))).get(r.key);
      if (!x) {
        settle(r, { key: r.key, status: 'failed', errorCode: 'NO_OUTCOME', errorMessage: 'the destination returned no outcome for this record', retryable: true }, attempt, sentAt);
      } else if (x.status === 'failed' && x.retryable && attempt < RECORD_ATTEMPTS && !stopped.aborted) {
        retry.push(r);
        wait = Math.max(wait, x.retryAfterMs ?? 0);
      } else {
        settle(r, x, attempt, sentAt);
      }
    }
    pending = retry;
    if (pending.length) await sleep(wait, undefined, { signal: stopped }).catch(() => {});
    if (stopped.aborted) {
      // No new attempt after a stop: deferred (interrupted), not failed, so a deploy never counts towards dead_after.
      for (const r of pending) settle(r, { key: r.key, status: 'deferred', errorCode: 'RETRY_STOPPED', errorMessage: 'a retryable failure; the run stopped before it could be sent again' }, attempt, sentAt);
      pending = [];
    }
  }
  return items.map((r) => final.get(r.key)!);
}

/**
 * Applies follow-up work under the engine's retry policy and records each outcome. A spent budget leaves the
 * work pending (deferred) and stops the run's further sending; any other failure leaves it pending too
 * (failed, retryable) — the records it belongs to stay delivered either way.
 */
async function applyFollowUps(o: DeliverOptions, work: FollowUpItem[], counts: FollowUpCounts, stopped: AbortSignal, stop: (by: 'budget', reason: string) => void): Promise<void> {
  const followUps = o.session.followUps;
  if (!followUps || work.length === 0) return;
  let outcomes: FollowUpOutcome[];
  try {
    outcomes = await withRetries(() => followUps.apply(work, o.forceSignal ?? never), { signal: stopped, log: o.log, what: `${followUps.kind} follow-up`, context: { records: work.length } });
  } catch (err) {
    const budget = err instanceof BudgetExhaustedError;
    if (budget) stop('budget', err.message);
    const e = err instanceof SegsyncError ? err : null;
    outcomes = work.map((w) => ({ key: w.key, status: budget || stopped.aborted ? 'deferred' : 'failed', errorCode: e?.code ?? 'UNEXPECTED', errorMessage: e?.message ?? String(err), retryable: true }));
  }
  const n = await recordFollowUps(o.pool, o.schema, o.mapping, followUps.kind, o.runId, outcomes);
  counts.done += n.done;
  counts.failed += n.failed;
  counts.deferred += n.deferred;
  if (n.deferred > 0 && !stopped.aborted) stop('budget', `${followUps.kind}: the destination deferred follow-up work (budget)`);
}

/**
 * Follow-up work that is not part of this run's records: what earlier runs left pending (deferred at a limit,
 * failed), then the follow-up objects (tickets, Cases) opened or changed since the last sweep on records
 * already delivered — their segment comes from the ledger, nothing is resent. Same session, same budget.
 */
export async function catchUpFollowUps(o: DeliverOptions, runStartedAt: Date): Promise<FollowUpCounts> {
  const counts: FollowUpCounts = { done: 0, failed: 0, deferred: 0 };
  const followUps = o.session.followUps;
  if (!followUps) return counts;
  const scope = new AbortController();
  const stop = () => scope.abort();
  o.signal.addEventListener('abort', stop, { once: true });
  try {
    let after: string | null = null;
    while (!scope.signal.aborted && !o.signal.aborted) {
      const page = await pendingFollowUps(o.pool, o.schema, o.mapping, followUps.kind, after, o.batchSize);
      if (!page.length) break;
      after = page[page.length - 1]!.key;
      await applyFollowUps(o, page.map((p) => ({ key: p.key, destinationId: p.destination_id, payload: p.payload })), counts, scope.signal, stop);
    }
    if (scope.signal.aborted || o.signal.aborted) return counts;
    const since = await sweptSince(o.pool, o.schema, o.mapping, followUps.kind);
    // The first run delivers every record with its follow-up: the sweep starts from there.
    if (since === null) {
      await markSwept(o.pool, o.schema, o.mapping, followUps.kind, runStartedAt);
      return counts;
    }
    const sweepStart = new Date();
    const ids = await withRetries(() => followUps.changedSince(new Date(since.getTime() - SWEEP_OVERLAP_MS), o.forceSignal ?? never), { signal: scope.signal, log: o.log, what: `${followUps.kind} changed since` });
    // One pass over the mapping's delivered state for all the changed contacts (destination_id has no index:
    // a lookup per page would scan the state once per page), then applied a page at a time.
    const rows = await deliveredByDestinationId(o.pool, o.schema, o.mapping, ids);
    for (const page of chunk(rows, o.batchSize)) {
      if (scope.signal.aborted) break;
      await applyFollowUps(o, page.map((r) => ({ key: r.key, destinationId: r.destination_id, payload: r.payload })), counts, scope.signal, stop);
    }
    if (!scope.signal.aborted && counts.deferred === 0) await markSwept(o.pool, o.schema, o.mapping, followUps.kind, sweepStart);
  } catch (err) {
    // Follow-up catch-up never fails the run: what is pending stays pending, the sweep mark does not move.
    if (err instanceof BudgetExhaustedError) counts.deferred++;
    o.log.warn({ err: describeError(err), kind: followUps.kind }, 'follow-up catch-up stopped; pending work stays pending');
  } finally {
    o.signal.removeEventListener('abort', stop);
  }
  return counts;
}
