import type { Db } from './transition.ts';

/**
 * Keeps the receipts' monthly partitions (migration 091): the partitions of this month and the next exist
 * before any receipt of theirs is written, and the partitions of months that ended more than `retentionMonths`
 * ago are dropped whole (a catalog change: O(1) whatever they hold, no DELETE, nothing left to vacuum).
 * Cheap when there is nothing to do (a catalog lookup); run before each run plans. Returns the dropped months
 * ('YYYY-MM').
 */
export async function maintainReceiptPartitions(db: Db, schema: string, retentionMonths: number): Promise<string[]> {
  await db.query(`SELECT ${schema}.receipts_partition(now()), ${schema}.receipts_partition(now() + interval '1 month')`);
  const { rows } = await db.query<{ name: string; month: string }>(
    `SELECT c.relname AS name, to_char(to_date(substr(c.relname, 11), 'YYYYMM'), 'YYYY-MM') AS month
     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = $1::regclass AND c.relname ~ '^receipts_p[0-9]{6}$'
       -- the month's end (the next month's start) is more than the retention ago
       AND to_date(substr(c.relname, 11), 'YYYYMM') + make_interval(months => 1 + $2::int) <= (now() AT TIME ZONE 'UTC')::date
     ORDER BY c.relname`, [`${schema}.receipts`, retentionMonths]);
  for (const r of rows) await db.query(`DROP TABLE ${schema}.${r.name}`);
  return rows.map((r) => r.month);
}

/** The month (a date, 'YYYY-MM-01') whose partition holds a run's receipts: the month (UTC) the run started. */
export async function receiptPeriod(db: Db, schema: string, runId: number): Promise<string> {
  const { rows } = await db.query<{ p: string }>(
    `SELECT to_char(date_trunc('month', coalesce((SELECT started_at FROM ${schema}.runs WHERE id = $1), now()) AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS p`, [runId]);
  return rows[0]!.p;
}
