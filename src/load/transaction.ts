import type pg from 'pg';
import type { Warehouse } from '../db/warehouse.ts';
import type { RejectWriter } from './rejects.ts';

/**
 * Runs a load in one transaction on one client: commits when `fn` asks to, rolls back otherwise or on any
 * error. The reject file follows the transaction: complete on disk before the commit, deleted when the load
 * failed (it would describe a load that did not happen).
 */
export async function inTransaction<T>(warehouse: Warehouse, rejects: RejectWriter, fn: (client: pg.PoolClient) => Promise<{ commit: boolean; result: T }>): Promise<T> {
  const client = await warehouse.pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('begin');
    const outcome = await fn(client);
    await rejects.close();
    await client.query(outcome.commit ? 'commit' : 'rollback');
    return outcome.result;
  } catch (err) {
    await client.query('rollback').catch((e: Error) => { broken = e; });
    await rejects.discard().catch(() => {});
    throw err;
  } finally {
    client.release(broken);
  }
}
