import { receiptPeriod } from './receipt-partitions.ts';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { withTransaction } from '../db/transaction.ts';
import type { RecordOutcome } from '../../destinations/types.ts';
import type { Actor } from './actor.ts';
import { transition } from './transition.ts';
import { maskText } from '../pii/mask.ts';

/** A record's final outcome in this run, as the ledger stores it. */
export interface FinalOutcome extends RecordOutcome {
  attempt: number;
  sentAt: Date | null;
  /** From the planned item, so the receipt needs no lookup of the intent. */
  op: 'create' | 'update' | 'remove';
  payloadHash: string | null;
  /** From the planned item: the delivered state had a row for this key when the run was planned. */
  stateExists: boolean;
  /**
   * From the planned item: its earlier definite failures, which `attempt` includes. Given, a batch whose
   * receipts differ only in what the run's items hold writes them from run_items (sharedReceipt).
   */
  priorFailures?: number;
}

const MESSAGE_CAP = 1000;

export interface RecordBatchOptions {
  schema: string;
  mapping: string;
  runId: number;
  deadAfter: number;
  /**
   * One outcome for every item of the batch, in key order. A batch is a contiguous key range of the run's
   * planned items, so the state rows are read from run_items by that range, not looked up key by key.
   * Deferred records get no receipt here (the caller closes them) and do not move the state.
   */
  outcomes: FinalOutcome[];
  /** COPY the receipts (a PostgreSQL server); false on embedded PGlite, whose socket cannot carry COPY. */
  copy: boolean;
  /** The batch as it was marked sending (transition to 'sending'); it becomes answered in this transaction. */
  batch: { firstKey: string; lastKey: string; size: number };
  actor: Actor;
  /** The mapping's follow-up work (tickets, cases): confirmed records get it pending in this transaction. */
  followUpKind?: string | null;
}

/**
 * Writes one batch's receipts and advances the delivered state, in ONE transaction with the batch's move to
 * answered: a receipt without its state change (or the reverse) never exists. The state advances only for
 * records the destination confirmed; a failure bumps the record's consecutive-failure count and marks it dead
 * at `deadAfter`; an in-doubt record is remembered as such (resent next run, never counted towards
 * dead_after). Confirmed records of a mapping with follow-up work get it pending here, so it is never lost.
 * The WHERE clauses keep a stale writer (an older run finishing late) from overwriting a newer run's state.
 * Answers the outcomes that got a receipt, in key order (every one but the deferred).
 */
export async function recordBatch(pool: pg.Pool, opts: RecordBatchOptions): Promise<FinalOutcome[]> {
  if (!opts.outcomes.length) return [];
  try {
    return await withTransaction(pool, (client) => writeBatch(client, opts, true));
  } catch (err) {
    // A key the plan saw without state has a state row now: only a run that outlived its lock writes one.
    // The whole batch is written again with upserts, which are always right (and guarded against stale runs).
    if ((err as { code?: string; constraint?: string }).code !== '23505' || (err as { constraint?: string }).constraint !== 'delivered_pkey') throw err;
    return await withTransaction(pool, (client) => writeBatch(client, opts, false));
  }
}

async function writeBatch(client: pg.PoolClient, opts: RecordBatchOptions, plainInserts: boolean): Promise<FinalOutcome[]> {
  const { schema, mapping, runId, outcomes } = opts;
  await transition(client, schema, { items: { run: runId, mapping, ...opts.batch } }, 'answered', opts.actor, null, countStatuses(outcomes));
  const final = outcomes.filter((o) => o.status !== 'deferred');
  if (final.length) await insertReceipts(client, opts, final);
  const delivered = outcomes.filter((o) => o.status === 'delivered');
  if (delivered.length) {
    const skip = outcomes.filter((o) => o.status !== 'delivered').map((o) => o.key);
    // One destination id for the whole batch (a file, a bulk job) travels as one value, not one per record.
    const firstId = delivered[0]!.destinationId ?? null;
    const common = firstId !== null && delivered.every((o) => o.destinationId === firstId) ? firstId : null;
    const own = common === null ? delivered.filter((o) => o.destinationId != null) : [];
    const select = `SELECT $1, ri.key,
                CASE WHEN ri.op = 'remove' THEN NULL ELSE ri.after END,
                CASE WHEN ri.op = 'remove' THEN NULL ELSE ri.payload_hash END,
                coalesce(u.destination_id, $6, ri.destination_id), now(), $2,
                CASE WHEN ri.op = 'remove' THEN now() END, 0,
                CASE WHEN ri.op = 'remove' THEN NULL ELSE ri.row_hash || ri.payload_hash END
         FROM ${schema}.run_items ri LEFT JOIN unnest($7::text[], $8::text[]) AS u(key, destination_id) ON u.key = ri.key
         WHERE ri.run_id = $2 AND ri.key BETWEEN $3 AND $4 AND NOT (ri.key = ANY($5::text[])) AND ($9::boolean IS NULL OR ri.state_exists = $9)`;
    const params = (stateExists: boolean | null) => [mapping, runId, outcomes[0]!.key, outcomes[outcomes.length - 1]!.key, skip, common,
      own.map((o) => o.key), own.map((o) => o.destinationId), stateExists];
    const fresh = delivered.filter((o) => !o.stateExists).length;
    if (plainInserts && fresh > 0) {
      const { rowCount } = await client.query(
        `INSERT INTO ${schema}.delivered (mapping, key, payload, payload_hash, destination_id, delivered_at, last_run_id, removed_at, fail_count, row_hash) ${select}`,
        params(false));
      if (rowCount !== fresh) throw new Error(`ledger: the key range of run ${runId}'s batch matched ${rowCount} new state rows, expected ${fresh}`);
    }
    if (!plainInserts || fresh < delivered.length) {
      await client.query(
        `INSERT INTO ${schema}.delivered AS d (mapping, key, payload, payload_hash, destination_id, delivered_at, last_run_id, removed_at, fail_count, row_hash) ${select}
         ON CONFLICT (mapping, key) DO UPDATE SET
           payload = EXCLUDED.payload, payload_hash = EXCLUDED.payload_hash, row_hash = EXCLUDED.row_hash,
           destination_id = coalesce(EXCLUDED.destination_id, d.destination_id),
           delivered_at = EXCLUDED.delivered_at, last_run_id = EXCLUDED.last_run_id, removed_at = EXCLUDED.removed_at,
           fail_count = 0, failed_hash = NULL, last_error_code = NULL, last_error = NULL, dead_at = NULL,
           reconcile_status = NULL, reconciled_at = NULL, in_doubt_run = NULL
         WHERE d.last_run_id IS NULL OR d.last_run_id <= EXCLUDED.last_run_id`,
        params(plainInserts ? true : null));
    }
  }
  const failed = outcomes.filter((o) => o.status === 'failed');
  if (failed.length) {
    await client.query(
      `INSERT INTO ${schema}.delivered AS d (mapping, key, last_run_id, fail_count, failed_hash, last_error_code, last_error, dead_at)
       SELECT $1, ri.key, $2, 1, ri.payload_hash, u.code, u.message, CASE WHEN $5 <= 1 THEN now() END
       FROM unnest($3::text[], $4::text[], $6::text[]) AS u(key, code, message)
       JOIN ${schema}.run_items ri ON ri.run_id = $2 AND ri.key = u.key
       ON CONFLICT (mapping, key) DO UPDATE SET
         last_run_id = EXCLUDED.last_run_id, fail_count = d.fail_count + 1, failed_hash = EXCLUDED.failed_hash,
         last_error_code = EXCLUDED.last_error_code, last_error = EXCLUDED.last_error,
         dead_at = CASE WHEN d.fail_count + 1 >= $5 THEN coalesce(d.dead_at, now()) END, in_doubt_run = NULL
       WHERE d.last_run_id IS NULL OR d.last_run_id <= EXCLUDED.last_run_id`,
      [mapping, runId, failed.map((o) => o.key), failed.map((o) => o.errorCode ?? 'UNKNOWN'), opts.deadAfter, failed.map((o) => maskText(o.errorMessage ?? '').slice(0, MESSAGE_CAP))],
    );
  }
  const doubt = outcomes.filter((o) => o.status === 'in_doubt');
  if (doubt.length) {
    await client.query(
      `INSERT INTO ${schema}.delivered AS d (mapping, key, last_run_id, in_doubt_run)
       SELECT $1, k, $2, $2 FROM unnest($3::text[]) AS k
       ON CONFLICT (mapping, key) DO UPDATE SET in_doubt_run = EXCLUDED.in_doubt_run, last_run_id = EXCLUDED.last_run_id
       WHERE d.last_run_id IS NULL OR d.last_run_id <= EXCLUDED.last_run_id`,
      [mapping, runId, doubt.map((o) => o.key)]);
  }
  if (opts.followUpKind && delivered.length) {
    await client.query(
      `INSERT INTO ${schema}.followups AS f (mapping, key, kind, status, last_run_id)
       SELECT $1, k, $2, 'pending', $3 FROM unnest($4::text[]) AS k
       ON CONFLICT (mapping, key, kind) DO UPDATE SET status = 'pending', last_run_id = EXCLUDED.last_run_id, attempts = 0, updated_at = now()`,
      [mapping, opts.followUpKind, runId, delivered.map((o) => o.key)]);
  }
  return final;
}

function countStatuses(outcomes: FinalOutcome[]): Record<string, number> {
  const n: Record<string, number> = {};
  for (const o of outcomes) n[o.status] = (n[o.status] ?? 0) + 1;
  return n;
}

/**
 * What every receipt of the batch shares, when they differ only in what the run's items hold (key, op, payload
 * hash and earlier failures, which the attempt adds): the first outcome and the send it came from. null when
 * anything else differs, or when an outcome does not say its earlier failures.
 */
function sharedReceipt(outcomes: FinalOutcome[]): { first: FinalOutcome; send: number } | null {
  const f = outcomes[0]!;
  if (f.priorFailures === undefined) return null;
  const send = f.attempt - f.priorFailures;
  const sent = f.sentAt?.getTime() ?? null;
  const same = (a: string | boolean | null | undefined, b: string | boolean | null | undefined) => (a ?? null) === (b ?? null);
  for (const x of outcomes) {
    if (x.status !== f.status || x.priorFailures === undefined || x.attempt - x.priorFailures !== send || (x.sentAt?.getTime() ?? null) !== sent
      || !same(x.destinationId, f.destinationId) || !same(x.requestId, f.requestId) || !same(x.created, f.created)
      || !same(x.errorCode, f.errorCode) || !same(x.errorMessage, f.errorMessage)) return null;
  }
  return { first: f, send };
}

const RECEIPT_COLUMNS = 'run_id, period, mapping, key, op, status, payload_hash, destination_id, created, error_code, error_message, attempt, request_id, sent_at';

/** Text in COPY's text format: backslash, tab, newline and carriage return escaped. */
function copyText(text: string): string {
  return COPY_SPECIAL.test(text) ? text.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : text;
}
const COPY_SPECIAL = /[\\\t\n\r]/;
/** Optional text: \N for NULL. */
const copyOpt = (v: string | null | undefined): string => (v == null ? '\\N' : copyText(v));

/**
 * Receipts are the ledger's bulk: one row per record per run. COPY writes them about twice as fast as an
 * INSERT from arrays, which is most of a batch's bookkeeping cost. One line per receipt, built directly:
 * what is the same for the whole batch (run, mapping, a send time shared by one attempt) is formatted once.
 */
async function insertReceipts(client: pg.PoolClient, o: RecordBatchOptions, outcomes: FinalOutcome[]): Promise<void> {
  // A destination's message can quote the record's values: masked before it is kept (docs/security.md).
  const message = (x: FinalOutcome) => (x.errorMessage ? maskText(x.errorMessage).slice(0, MESSAGE_CAP) : null);
  // Every receipt of a run goes to the partition of the month the run started (migration 091).
  const period = await receiptPeriod(client, o.schema, o.runId);
  // Only a batch with no deferred record: its receipts are then its whole key range of planned items.
  const shared = outcomes.length === o.outcomes.length ? sharedReceipt(outcomes) : null;
  if (shared) {
    const { first, send } = shared;
    // A batch answered as one (a file, a bulk job, a whole-batch failure): its receipts are the batch's items
    // with what they share. Written from run_items by the batch's key range, nothing of them travels from Node.
    const { rowCount } = await client.query(
      `INSERT INTO ${o.schema}.receipts (${RECEIPT_COLUMNS})
       SELECT $1, $2::date, $3, ri.key, ri.op, $4, ri.payload_hash, $5, $6, $7, $8, $9 + ri.prior_failures, $10, $11
       FROM ${o.schema}.run_items ri WHERE ri.run_id = $1 AND ri.key BETWEEN $12 AND $13`,
      [o.runId, period, o.mapping, first.status, first.destinationId ?? null, first.created ?? null, first.errorCode ?? null, message(first),
        send, first.requestId ?? null, first.sentAt, o.batch.firstKey, o.batch.lastKey]);
    if (rowCount !== outcomes.length) throw new Error(`ledger: the key range of run ${o.runId}'s batch matched ${rowCount} planned items, expected ${outcomes.length}`);
    return;
  }
  if (o.copy) {
    const prefix = `${o.runId}\t${period}\t${copyText(o.mapping)}\t`;
    let lastSent: Date | null = null;
    let lastSentText = '\\N';
    // A few hundred lines at a time: small strings the young generation collects, not one of megabytes.
    function* lines(): Generator<string> {
      let text = '';
      for (const [i, x] of outcomes.entries()) {
        if (x.sentAt !== lastSent) {
          lastSent = x.sentAt;
          lastSentText = x.sentAt ? x.sentAt.toISOString() : '\\N';
        }
        // op and status are fixed words that never need escaping.
        text += `${prefix}${copyText(x.key)}\t${x.op}\t${x.status}\t${copyOpt(x.payloadHash)}\t${copyOpt(x.destinationId)}\t${x.created == null ? '\\N' : x.created}\t`
          + `${copyOpt(x.errorCode)}\t${copyOpt(message(x))}\t${x.attempt}\t${copyOpt(x.requestId)}\t${lastSentText}\n`;
        if (i % 500 === 499) {
          yield text;
          text = '';
        }
      }
      if (text) yield text;
    }
    await pipeline(Readable.from(lines()), client.query(copyFrom(`COPY ${o.schema}.receipts (${RECEIPT_COLUMNS}) FROM STDIN`)));
    return;
  }
  const col = <T>(f: (x: FinalOutcome) => T) => outcomes.map(f);
  await client.query(
    `INSERT INTO ${o.schema}.receipts (${RECEIPT_COLUMNS})
     SELECT $1, $14::date, $2, u.*
     FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::boolean[], $9::text[], $10::text[], $11::int[], $12::text[], $13::timestamptz[])
          AS u(key, op, status, payload_hash, destination_id, created, error_code, error_message, attempt, request_id, sent_at)`,
    [o.runId, o.mapping, col((x) => x.key), col((x) => x.op), col((x) => x.status), col((x) => x.payloadHash), col((x) => x.destinationId ?? null),
      col((x) => x.created ?? null), col((x) => x.errorCode ?? null), col(message), col((x) => x.attempt), col((x) => x.requestId ?? null), col((x) => x.sentAt), period],
  );
}
