import type { Db } from './transition.ts';

export interface ReceiptFilter {
  mapping?: string;
  key?: string;
  run?: number;
  status?: string;
  limit: number;
}

/**
 * Receipts, newest run first, with the record's latest reconciliation verdict. Receipts are keyed by (run,
 * key): one record's history is found through the runs (one index probe per run), which stays fast however
 * many receipts the ledger holds.
 */
export async function findReceipts(db: Db, schema: string, f: ReceiptFilter): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query(
    `SELECT r.run_id, r.mapping, r.key, r.op, r.status, r.attempt, r.destination_id, r.created, r.error_code, r.error_message, r.request_id,
            r.payload_hash, r.recorded_at, d.reconcile_status, d.dead_at IS NOT NULL AS dead
     FROM ${schema}.runs ru
     -- a run's receipts are in the partition of the month it started (migration 091): the months before are
     -- pruned for each run
     JOIN ${schema}.receipts r ON r.run_id = ru.id${f.key === undefined ? '' : ' AND r.key = $2'}
       AND r.period >= (date_trunc('month', ru.started_at AT TIME ZONE 'UTC'))::date
     LEFT JOIN ${schema}.delivered d ON d.mapping = r.mapping AND d.key = r.key
     WHERE ($1::text IS NULL OR ru.mapping = $1) AND ($2::text IS NULL OR r.key = $2) AND ($3::bigint IS NULL OR ru.id = $3)
       AND ($4::text IS NULL OR r.status = $4)
     ORDER BY r.run_id DESC, r.key DESC LIMIT $5`,
    [f.mapping ?? null, f.key ?? null, f.run ?? null, f.status ?? null, f.limit]);
  return rows;
}
