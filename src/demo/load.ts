import type pg from 'pg';
import { withTransaction } from '../db/transaction.ts';
import type { Warehouse } from '../db/warehouse.ts';
import { DataError } from '../errors.ts';
import { ensurePaymentsTable, parseRelation, type Relation } from '../load/payments-table.ts';
import { stageRows, type StageColumn, type StageValue } from '../load/stage.ts';
import { demoPayments, type DemoOptions } from './generate.ts';

export interface LoadDemoOptions extends DemoOptions {
  relation: Relation | string;
  /**
   * Keep the demo rows already there and add what a longer window brings (same seed, users and window
   * start: e.g. months + 1 with end + 1 month). Default: replace every demo row.
   */
  append?: boolean | undefined;
}

/** Every demo payment_id starts with this; other rows of the relation are never touched. */
export const DEMO_PREFIX = 'demo-';

const TARGET: StageColumn[] = [
  { name: 'user_id', type: 'text' },
  { name: 'payment_id', type: 'text' },
  { name: 'payment_date', type: 'timestamptz' },
  { name: 'payment_amount', type: 'numeric' },
];

/**
 * Writes demo payments into the payments relation in one transaction, streaming (COPY on a real server):
 * - replace (default): every demo row (payment_id `demo-...`) is removed, then the window is written;
 * - append: nothing is deleted; only generated payments later than the latest demo payment are inserted
 *   (the earlier ones are there already, identical by construction), so adding a month costs a month and
 *   appending the same window twice adds nothing.
 * Returns the payments written and the distinct users among them.
 */
export async function loadDemoPayments(warehouse: Warehouse, opts: LoadDemoOptions): Promise<{ payments: number; users: number }> {
  const relation = typeof opts.relation === 'string' ? parseRelation(opts.relation) : opts.relation;
  return withTransaction(warehouse.pool, async (client) => {
    await ensurePaymentsTable(client, relation);
    let from: Date | undefined;
    if (opts.append) {
      const other = await client.query(`select payment_id from ${relation.sql} where payment_id like $1 and payment_id not like $2 limit 1`, [`${DEMO_PREFIX}%`, `${DEMO_PREFIX}${opts.seed}-%`]);
      if (other.rows.length) {
        throw new DataError('DEMO_SEED_MISMATCH', `${relation.display} holds demo rows of another seed (e.g. ${other.rows[0].payment_id}); appending seed ${opts.seed} would mix two data sets`, {
          hint: 'append with the seed the demo data was made with, or load without --append to replace it',
        });
      }
      const latest = await client.query<{ at: Date | null }>(`select max(payment_date) as at from ${relation.sql} where payment_id like $1`, [`${DEMO_PREFIX}%`]);
      // Demo times are whole seconds: one millisecond later is strictly after the latest one.
      if (latest.rows[0]!.at) from = new Date(latest.rows[0]!.at.getTime() + 1);
    } else {
      await clearDemoRows(client, relation);
    }
    let payments = 0;
    let users = 0;
    let lastUser = '';
    async function* rows(): AsyncGenerator<StageValue[]> {
      for (const p of demoPayments({ ...opts, from })) {
        payments++;
        // Payments come grouped by user, so counting changes counts distinct users.
        if (p.user_id !== lastUser) { users++; lastUser = p.user_id; }
        yield [p.user_id, p.payment_id, p.payment_date.toISOString(), p.payment_amount];
      }
    }
    await stageRows(client, warehouse.embedded, relation.sql, TARGET, rows());
    return { payments, users };
  });
}

async function clearDemoRows(client: pg.PoolClient, relation: Relation): Promise<void> {
  // A table of demo rows only is emptied with TRUNCATE: faster than deleting a million rows, and no bloat.
  const other = await client.query(`select 1 from ${relation.sql} where payment_id not like $1 limit 1`, [`${DEMO_PREFIX}%`]);
  if (other.rows.length === 0) await client.query(`truncate ${relation.sql}`);
  else await client.query(`delete from ${relation.sql} where payment_id like $1`, [`${DEMO_PREFIX}%`]);
}
