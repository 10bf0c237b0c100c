import type { Db } from './transition.ts';

export interface ReceiptFilter {
  mapping?: string;
  key?: string;
  run?: number;
  status?: string;
  op?: string;
  /** Recorded at or after / before. */
  since?: Date;
  until?: Date;
  limit: number;
}

/**
 * Receipts, newest run first, with the record's latest reconciliation verdict. Receipts are keyed by (run,
 * key): one record's history is found through the runs (one index probe per run), which stays fast however
 * many receipts the ledger holds.
 */
export async function findReceipts(db: Db, schema: string, f: ReceiptFilter): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query(
    `SELECT r.run_id, r.mapping, ru.destination AS connection, r.key, r.op, r.status, r.attempt, r.destination_id, r.created, r.error_code, r.error_message, r.request_id,
            r.payload_hash, r.recorded_at, d.reconcile_status, d.dead_at IS NOT NULL AS dead, ri.before, ri.after
     FROM ${schema}.runs ru
     -- a run's receipts are in the partition of the month it started (migration 091): the months before are
     -- pruned for each run
     JOIN ${schema}.receipts r ON r.run_id = ru.id${f.key === undefined ? '' : ' AND r.key = $2'}
       AND r.period >= (date_trunc('month', ru.started_at AT TIME ZONE 'UTC'))::date
     LEFT JOIN ${schema}.delivered d ON d.mapping = r.mapping AND d.key = r.key
     LEFT JOIN ${schema}.run_items ri ON ri.run_id = r.run_id AND ri.key = r.key
     WHERE ($1::text IS NULL OR ru.mapping = $1) AND ($2::text IS NULL OR r.key = $2) AND ($3::bigint IS NULL OR ru.id = $3)
       AND ($4::text IS NULL OR r.status = $4) AND ($6::text IS NULL OR r.op = $6)
       AND ($7::timestamptz IS NULL OR r.recorded_at >= $7) AND ($8::timestamptz IS NULL OR r.recorded_at < $8)
     ORDER BY r.run_id DESC, r.key DESC LIMIT $5`,
    [f.mapping ?? null, f.key ?? null, f.run ?? null, f.status ?? null, f.limit, f.op ?? null, f.since ?? null, f.until ?? null]);
  return rows;
}
