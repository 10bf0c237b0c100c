import type pg from 'pg';

/**
 * Runs `fn` in one transaction on one client: COMMIT when it returns, ROLLBACK when it throws. A client whose
 * ROLLBACK itself failed is destroyed rather than returned to the pool in an unknown state.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
    throw err;
  } finally {
    client.release(broken);
  }
}
