import type pg from 'pg';

export interface TransactionOptions<T> {
  /** The statement that opens it (default BEGIN), e.g. with an isolation level. */
  begin?: string;
  /** COMMIT when `fn` returns (default); false, or a function of its result that says false, rolls back (a dry run). */
  commit?: boolean | ((result: T) => boolean);
}

/**
 * Runs `fn` in one transaction on one client: COMMIT when it returns, ROLLBACK when it throws. A client whose
 * ROLLBACK itself failed is destroyed rather than returned to the pool in an unknown state.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, opts: TransactionOptions<T> = {}): Promise<T> {
  return inTransaction(await pool.connect(), fn, opts);
}

/** withTransaction on a client already taken from its pool; the client is released (or destroyed) after. */
export async function inTransaction<T>(client: pg.PoolClient, fn: (client: pg.PoolClient) => Promise<T>, opts: TransactionOptions<T> = {}): Promise<T> {
  let broken: Error | undefined;
  try {
    await client.query(opts.begin ?? 'BEGIN');
    const result = await fn(client);
    const commit = typeof opts.commit === 'function' ? opts.commit(result) : opts.commit !== false;
    await client.query(commit ? 'COMMIT' : 'ROLLBACK');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
    throw err;
  } finally {
    client.release(broken);
  }
}

/**
 * Runs `fn` under a savepoint of the transaction `db` is in: should it throw, the transaction is rolled back to
 * the savepoint, so it stays usable, and the error is rethrown for the caller to judge. For a statement whose
 * failure is an answer (a check refused, a transform that does not fit), not the end of the transaction.
 */
export async function inSavepoint<T>(db: Pick<pg.ClientBase, 'query'>, fn: () => Promise<T>): Promise<T> {
  await db.query('SAVEPOINT segsync_step');
  try {
    const result = await fn();
    await db.query('RELEASE SAVEPOINT segsync_step');
    return result;
  } catch (err) {
    await db.query('ROLLBACK TO SAVEPOINT segsync_step');
    throw err;
  }
}
