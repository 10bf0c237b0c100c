import type pg from 'pg';
import { withTransaction } from '../db/transaction.ts';
import type { Warehouse } from '../db/warehouse.ts';
import type { RejectWriter } from './rejects.ts';

/**
 * Runs a load in one transaction on one client: commits when `fn` asks to, rolls back otherwise or on any
 * error. The reject file follows the transaction: complete on disk before the commit, deleted when the load
 * failed (it would describe a load that did not happen).
 */
export async function inLoadTransaction<T>(warehouse: Warehouse, rejects: RejectWriter, fn: (client: pg.PoolClient) => Promise<{ commit: boolean; result: T }>): Promise<T> {
  try {
    const outcome = await withTransaction(warehouse.pool, async (client) => {
      const o = await fn(client);
      await rejects.close();
      return o;
    }, { commit: (o) => o.commit });
    return outcome.result;
  } catch (err) {
    await rejects.discard().catch(() => {});
    throw err;
  }
}
