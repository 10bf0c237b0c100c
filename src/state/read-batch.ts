import type pg from 'pg';
import type { Change } from '../../destinations/types.ts';
import { withTransaction } from '../db/transaction.ts';

export interface ItemRow {
  key: string;
  op: Change['op'];
  after: Change['after'];
  before: Change['before'];
  payload_hash: string;
  destination_id: string | null;
  state_exists: boolean;
  resend: boolean;
  /** Earlier runs that got a definite failure answer for this very change. */
  prior_failures: number;
}

/**
 * The run's next `size` planned items after `afterKey` in key order (keyset pagination): one batch, a
 * contiguous key range. The run's items were just written, so the planner's statistics still describe a far
 * smaller table: it would sort every remaining item of the run (an external sort at 1M) to return one page.
 * Walking the primary key is the right plan at any size, and no sort is needed for it.
 */
export async function readBatch(pool: pg.Pool, schema: string, runId: number, afterKey: string | null, size: number): Promise<ItemRow[]> {
  return withTransaction(pool, async (client) => {
    await client.query('SET LOCAL enable_sort = off');
    return (await client.query<ItemRow>(
      `SELECT key, op, after, before, payload_hash, destination_id, state_exists, resend, prior_failures FROM ${schema}.run_items
       WHERE run_id = $1 AND ($2::text IS NULL OR key > $2) ORDER BY key LIMIT $3`,
      [runId, afterKey, size])).rows;
  });
}
