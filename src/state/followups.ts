import type { FollowUpOutcome, Payload } from '../../destinations/types.ts';
import type { Db } from './transition.ts';

/**
 * The follow-up ledger (state.followups, migration 040): follow-up work of confirmed records (segment onto
 * open tickets or Cases), pending until applied. Rows become pending in the transaction that confirms the
 * record (record-batch.ts); these operations read what is pending and record what applying it gave.
 */

export interface PendingFollowUp {
  key: string;
  destination_id: string;
  payload: Payload | null;
}

/** Pending follow-ups of the mapping, in key order after `afterKey`, with the delivered record they belong to. */
export async function pendingFollowUps(db: Db, schema: string, mapping: string, kind: string, afterKey: string | null, limit: number): Promise<PendingFollowUp[]> {
  return (await db.query<PendingFollowUp>(
    `SELECT f.key, d.destination_id, d.payload FROM ${schema}.followups f
     JOIN ${schema}.delivered d ON d.mapping = f.mapping AND d.key = f.key
     WHERE f.mapping = $1 AND f.kind = $2 AND f.status = 'pending' AND ($3::text IS NULL OR f.key > $3) AND d.destination_id IS NOT NULL
     ORDER BY f.key LIMIT $4`,
    [mapping, kind, afterKey, limit])).rows;
}

/**
 * Records what applying follow-ups gave: done; failed (retryable: stays pending for the next run; not
 * retryable: failed until the record is delivered again); deferred: stays pending. Returns counts per status.
 */
export async function recordFollowUps(db: Db, schema: string, mapping: string, kind: string, runId: number, outcomes: FollowUpOutcome[]): Promise<Record<FollowUpOutcome['status'], number>> {
  const counts = { done: 0, failed: 0, deferred: 0 };
  if (!outcomes.length) return counts;
  for (const o of outcomes) counts[o.status]++;
  const status = outcomes.map((o) => (o.status === 'done' ? 'done' : o.status === 'failed' && !o.retryable ? 'failed' : 'pending'));
  await db.query(
    `INSERT INTO ${schema}.followups AS f (mapping, key, kind, status, attempts, last_run_id, last_error_code, last_error)
     SELECT $1, u.key, $2, u.status, CASE WHEN u.tried THEN 1 ELSE 0 END, $3, u.code, u.message
     FROM unnest($4::text[], $5::text[], $6::boolean[], $7::text[], $8::text[]) AS u(key, status, tried, code, message)
     ON CONFLICT (mapping, key, kind) DO UPDATE SET status = EXCLUDED.status, attempts = f.attempts + EXCLUDED.attempts,
       last_run_id = EXCLUDED.last_run_id, last_error_code = EXCLUDED.last_error_code, last_error = EXCLUDED.last_error, updated_at = now()`,
    [mapping, kind, runId, outcomes.map((o) => o.key), status, outcomes.map((o) => o.status !== 'deferred'),
      outcomes.map((o) => o.errorCode ?? null), outcomes.map((o) => (o.errorMessage ?? null)?.slice(0, 1000) ?? null)]);
  return counts;
}

/** Since when the mapping's follow-up objects changed in the destination have not been swept yet (null: never). */
export async function sweptSince(db: Db, schema: string, mapping: string, kind: string): Promise<Date | null> {
  const { rows } = await db.query<{ since: Date }>(`SELECT since FROM ${schema}.followup_sweeps WHERE mapping = $1 AND kind = $2`, [mapping, kind]);
  return rows[0]?.since ?? null;
}

/** Moves the sweep mark forward to `since` (after a sweep that completed). */
export async function markSwept(db: Db, schema: string, mapping: string, kind: string, since: Date): Promise<void> {
  await db.query(
    `INSERT INTO ${schema}.followup_sweeps (mapping, kind, since) VALUES ($1, $2, $3)
     ON CONFLICT (mapping, kind) DO UPDATE SET since = greatest(${schema}.followup_sweeps.since, EXCLUDED.since)`,
    [mapping, kind, since]);
}
