import type pg from 'pg';
import { withTransaction } from '../db/transaction.ts';

export interface Closed {
  /** Items never sent: receipts with the status asked for (deferred or interrupted). */
  unsent: number;
  /** Items of a batch that was sending and whose answer was never recorded: receipts in_doubt, resent next run. */
  inDoubt: number;
}

/**
 * Gives every planned item of the run that has no receipt yet its final receipt, in one transaction: an item
 * of a batch still marked sending is in doubt (its request left; the answer was lost to a crash or a failed
 * ledger write), and its delivered state remembers that, so the next run resends it and counts it as a
 * resend; any other item was never sent and gets `status` with `reason`.
 */
export async function closeUnsent(pool: pg.Pool, schema: string, mapping: string, runId: number, status: 'deferred' | 'interrupted', reason: string): Promise<Closed> {
  // The partition of the month the run started (migration 091), as record-batch.ts writes it.
  const PERIOD = `(SELECT (date_trunc('month', coalesce((SELECT started_at FROM ${schema}.runs WHERE id = $1), now()) AT TIME ZONE 'UTC'))::date)`;
  return withTransaction(pool, async (client) => {
    const doubt = await client.query<{ key: string }>(
      `INSERT INTO ${schema}.receipts (run_id, period, mapping, key, op, status, payload_hash, destination_id, error_code, error_message)
       SELECT ri.run_id, ${PERIOD}, $2, ri.key, ri.op, 'in_doubt', ri.payload_hash, ri.destination_id, 'IN_DOUBT',
              'the request was sent and its answer was never recorded (the process stopped or the ledger write failed); sent again next run'
       FROM ${schema}.run_batches b
       JOIN ${schema}.run_items ri ON ri.run_id = b.run_id AND ri.key BETWEEN b.first_key AND b.last_key
       WHERE b.run_id = $1 AND b.status = 'sending'
         AND NOT EXISTS (SELECT 1 FROM ${schema}.receipts r WHERE r.run_id = ri.run_id AND r.key = ri.key AND r.period >= ${PERIOD})
       RETURNING key`, [runId, mapping]);
    if (doubt.rows.length) {
      await client.query(
        `INSERT INTO ${schema}.delivered AS d (mapping, key, last_run_id, in_doubt_run)
         SELECT $1, k, $2, $2 FROM unnest($3::text[]) AS k
         ON CONFLICT (mapping, key) DO UPDATE SET in_doubt_run = EXCLUDED.in_doubt_run, last_run_id = EXCLUDED.last_run_id
         WHERE d.last_run_id IS NULL OR d.last_run_id <= EXCLUDED.last_run_id`,
        [mapping, runId, doubt.rows.map((r) => r.key)]);
      await client.query(`UPDATE ${schema}.run_batches SET status = 'answered', answered_at = clock_timestamp() WHERE run_id = $1 AND status = 'sending'`, [runId]);
    }
    const { rowCount } = await client.query(
      `INSERT INTO ${schema}.receipts (run_id, period, mapping, key, op, status, payload_hash, destination_id, error_code, error_message)
       SELECT ri.run_id, ${PERIOD}, $2, ri.key, ri.op, $3, ri.payload_hash, ri.destination_id, $4, $5
       FROM ${schema}.run_items ri
       WHERE ri.run_id = $1 AND NOT EXISTS (SELECT 1 FROM ${schema}.receipts r WHERE r.run_id = ri.run_id AND r.key = ri.key AND r.period >= ${PERIOD})`,
      [runId, mapping, status, status === 'deferred' ? 'DEFERRED' : 'INTERRUPTED', reason]);
    return { unsent: rowCount ?? 0, inDoubt: doubt.rows.length };
  });
}
