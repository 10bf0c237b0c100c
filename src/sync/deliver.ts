import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import type pg from 'pg';
import type { Change, DestinationSession, RecordOutcome } from '../../destinations/types.ts';
import { BudgetExhaustedError, SegsyncError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { withTransaction } from '../db/transaction.ts';
import { recordBatch, type FinalOutcome } from './ledger.ts';

export interface DeliverOptions {
  pool: pg.Pool;
  schema: string;
  mapping: string;
  runId: number;
  session: DestinationSession;
  batchSize: number;
  concurrency: number;
  deadAfter: number;
  /** Receipts by COPY (PostgreSQL server) or INSERT (embedded). */
  copy: boolean;
  signal: AbortSignal;
  log: Logger;
  onProgress?: (done: number) => void;
}

export interface DeliverResult {
  delivered: number;
  failed: number;
  /** Why the run stopped early: budget spent, aborted, or too many whole batches failing. */
  stoppedBy: 'budget' | 'abort' | 'circuit' | null;
  stopReason: string | null;
}

interface ItemRow {
  key: string;
  op: Change['op'];
  after: Change['after'];
  before: Change['before'];
  payload_hash: string;
  destination_id: string | null;
  state_exists: boolean;
}

/** Whole batches failing in a row before the run stops instead of burning the destination's budget. */
const CIRCUIT_LIMIT = 3;
/** Whole-batch retries for retryable errors (429, 5xx, network), the first after at least this long. */
const BATCH_RETRIES = 5;
const MIN_RETRY_DELAY_MS = 500;
/** Sends of one record within a run when the destination says its failure is retryable (row locks). */
const RECORD_ATTEMPTS = 3;

/**
 * Sends the run's planned items in key order: pages of batchSize x concurrency, each page's batches in
 * parallel, every batch's outcomes recorded (receipts + delivered state) in one transaction before its
 * records count as done. Stops cleanly, without losing anything, when the budget is spent, the run is
 * aborted, or the destination keeps failing whole batches; unsent items then get deferred/interrupted
 * receipts from the caller.
 */
export async function deliverPlanned(o: DeliverOptions): Promise<DeliverResult> {
  const result: DeliverResult = { delivered: 0, failed: 0, stoppedBy: null, stopReason: null };
  let consecutiveBatchFailures = 0;
  const stop = (by: NonNullable<DeliverResult['stoppedBy']>, reason: string) => {
    if (!result.stoppedBy) Object.assign(result, { stoppedBy: by, stopReason: reason });
  };

  const sendBatch = async (items: ItemRow[]) => {
    if (result.stoppedBy) return;
    const outcomes = await sendWithRetries(o, items);
    if (outcomes.every((x) => x.status === 'failed') && outcomes.length > 0) {
      // The code only: a record's message can quote its values, and this reason goes on every unsent receipt.
      if (++consecutiveBatchFailures >= CIRCUIT_LIMIT) stop('circuit', `${CIRCUIT_LIMIT} batches in a row failed entirely; last error code: ${outcomes[0]?.errorCode}`);
    } else if (outcomes.some((x) => x.status === 'delivered')) {
      consecutiveBatchFailures = 0;
    }
    // Deferred records end the run: the budget ran out (a BudgetExhaustedError defers the whole batch, and a
    // destination may defer some records itself). After an abort they are interrupted instead, further down.
    const deferred = outcomes.find((x) => x.status === 'deferred');
    if (deferred && !o.signal.aborted) stop('budget', deferred.errorMessage ?? 'the destination deferred the rest of the run');
    await recordBatch(o.pool, { schema: o.schema, mapping: o.mapping, runId: o.runId, deadAfter: o.deadAfter, outcomes, copy: o.copy });
    for (const x of outcomes) {
      if (x.status === 'delivered') result.delivered++;
      else if (x.status === 'failed') result.failed++;
    }
    o.onProgress?.(result.delivered + result.failed);
  };

  // Workers pull batches as they finish, so a slow batch or the next page's read never idles the others.
  const batches = readBatches(o, () => result.stoppedBy !== null);
  const worker = async () => {
    for (;;) {
      if (result.stoppedBy) return;
      if (o.signal.aborted) return stop('abort', 'the run was stopped (shutdown or signal)');
      const next = await batches.next();
      if (next.done) return;
      await sendBatch(next.value);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  // The reader also ends on an abort; what it did not hand out is then interrupted, not merely unsent.
  if (o.signal.aborted) stop('abort', 'the run was stopped (shutdown or signal)');
  return result;
}

/**
 * The run's planned items in key order, one batch per query (keyset pagination): a worker that is free takes
 * the next batch, and no more than one batch per worker plus the one being read is held in memory.
 */
async function* readBatches(o: DeliverOptions, stopped: () => boolean): AsyncGenerator<ItemRow[]> {
  let lastKey: string | null = null;
  while (!stopped() && !o.signal.aborted) {
    // The run's items were just written, so the planner's statistics still describe a far smaller table: it
    // would sort every remaining item of the run (an external sort at 1M) to return one page. Walking the
    // primary key is the right plan at any size, and no sort is needed for it.
    const after: string | null = lastKey;
    const { rows }: { rows: ItemRow[] } = await withTransaction(o.pool, async (client): Promise<pg.QueryResult<ItemRow>> => {
      await client.query('SET LOCAL enable_sort = off');
      return client.query<ItemRow>(
        `SELECT key, op, after, before, payload_hash, destination_id, state_exists FROM ${o.schema}.run_items
         WHERE run_id = $1 AND ($2::text IS NULL OR key > $2) ORDER BY key LIMIT $3`,
        [o.runId, after, o.batchSize],
      );
    });
    if (!rows.length) return;
    lastKey = rows[rows.length - 1]!.key;
    yield rows;
  }
}

function toChange(r: ItemRow, attempt: number): Change {
  return { key: r.key, op: r.op, before: r.before, after: r.after, payloadHash: r.payload_hash, destinationId: r.destination_id, attempt };
}

/**
 * One batch through the destination: whole-batch failures retried with backoff and jitter (honouring
 * Retry-After), then records the destination calls retryable sent again, up to recordAttempts. Returns one
 * outcome per item; never throws for destination errors.
 */
async function sendWithRetries(o: DeliverOptions, items: ItemRow[]): Promise<FinalOutcome[]> {
  const final = new Map<string, FinalOutcome>();
  // The planned item's part of the outcome, so that each record's outcome is one object.
  const settle = (r: ItemRow, x: RecordOutcome, attempt: number, sentAt: Date) => final.set(r.key,
    { ...x, attempt, sentAt, op: r.op, payloadHash: r.payload_hash, stateExists: r.state_exists, destinationId: x.destinationId ?? r.destination_id });
  let pending = items;
  for (let attempt = 1; pending.length && attempt <= RECORD_ATTEMPTS; attempt++) {
    const sentAt = new Date();
    let outcomes: RecordOutcome[];
    try {
      const changes = pending.map((r) => toChange(r, attempt));
      outcomes = (await pRetry(() => o.session.deliver(changes, o.signal), {
        retries: BATCH_RETRIES,
        minTimeout: MIN_RETRY_DELAY_MS,
        maxTimeout: 60_000,
        randomize: true,
        signal: o.signal,
        shouldRetry: ({ error }) => isRetryable(error) && !o.signal.aborted,
        onFailedAttempt: async ({ error, attemptNumber, retryDelay }) => {
          o.log.warn({ err: errSummary(error), attempt: attemptNumber, batch: pending.length }, 'destination batch failed');
          const wait = error instanceof SegsyncError ? (error.retryAfterMs ?? 0) - retryDelay : 0;
          if (wait > 0 && isRetryable(error)) await sleep(wait, undefined, { signal: o.signal }).catch(() => {});
        },
      })).outcomes;
    } catch (err) {
      const status = err instanceof BudgetExhaustedError || o.signal.aborted ? 'deferred' : 'failed';
      const s = errSummary(err);
      for (const r of pending) settle(r, { key: r.key, status, errorCode: s.code, errorMessage: s.message }, attempt, sentAt);
      break;
    }
    // Outcomes may come in any order; most destinations keep the batch's, and then no lookup table is built.
    let byKey: Map<string, RecordOutcome> | null = null;
    const retry: ItemRow[] = [];
    for (const [i, r] of pending.entries()) {
      const x = outcomes[i]?.key === r.key ? outcomes[i] : (byKey ??= new Map(outcomes.map((y) => [y.key, y]))).get(r.key);
      if (!x) {
        settle(r, { key: r.key, status: 'failed', errorCode: 'NO_OUTCOME', errorMessage: 'the destination returned no outcome for this record' }, attempt, sentAt);
      } else if (x.status === 'failed' && x.retryable && attempt < RECORD_ATTEMPTS) {
        retry.push(r);
      } else {
        settle(r, x, attempt, sentAt);
      }
    }
    pending = retry;
    if (pending.length) await sleep(MIN_RETRY_DELAY_MS * attempt, undefined, { signal: o.signal }).catch(() => {});
  }
  return items.map((r) => final.get(r.key)!);
}

function isRetryable(err: unknown): boolean {
  return err instanceof SegsyncError && err.retryable;
}

function errSummary(err: unknown): { code: string; message: string } {
  if (err instanceof SegsyncError) return { code: err.code, message: err.message };
  if (err instanceof Error) return { code: 'UNEXPECTED', message: err.message };
  return { code: 'UNEXPECTED', message: String(err) };
}
