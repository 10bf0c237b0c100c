import type pg from 'pg';
import { LockedError } from '../errors.ts';
import type { Warehouse } from '../db/warehouse.ts';

export interface RunLock {
  release(): Promise<void>;
}

/**
 * One runner per mapping. On a PostgreSQL server: a session-level advisory lock held on a dedicated
 * connection for the whole run (a run is many transactions, so a transaction-scoped lock cannot span it);
 * if the process dies, the server drops the connection and the lock with it. In embedded mode PGlite is a
 * single session shared by the whole process (and the data folder's lock file keeps other processes out), so
 * advisory locks would be re-entrant there: an in-process lock table takes their place.
 */
export async function acquireRunLock(warehouse: Warehouse, mapping: string, opts: { wait: boolean; waitTimeoutMs?: number }): Promise<RunLock> {
  return warehouse.embedded ? acquireLocal(mapping, opts) : acquireAdvisory(warehouse.pool, mapping, opts);
}

const lockKey = (mapping: string) => `segsync:run:${mapping}`;

async function acquireAdvisory(pool: pg.Pool, mapping: string, opts: { wait: boolean; waitTimeoutMs?: number }): Promise<RunLock> {
  const client = await pool.connect();
  try {
    let got: boolean;
    if (opts.wait) {
      await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(opts.waitTimeoutMs ?? 3_600_000))}`);
      try {
        await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [lockKey(mapping)]);
        got = true;
      } catch (err) {
        if ((err as { code?: string }).code !== '55P03') throw err;
        got = false;
      } finally {
        await client.query('RESET lock_timeout');
      }
    } else {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [lockKey(mapping)]);
      got = rows[0]?.ok === true;
    }
    if (!got) throw lockedError(mapping);
  } catch (err) {
    client.release();
    throw err;
  }
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      try {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockKey(mapping)]);
        client.release();
      } catch (err) {
        // A broken connection already lost the lock; destroy it rather than return it to the pool.
        client.release(err as Error);
      }
    },
  };
}

const localLocks = new Map<string, Promise<void>>();

async function acquireLocal(mapping: string, opts: { wait: boolean; waitTimeoutMs?: number }): Promise<RunLock> {
  const deadline = Date.now() + (opts.waitTimeoutMs ?? 3_600_000);
  while (localLocks.has(mapping)) {
    if (!opts.wait || Date.now() > deadline) throw lockedError(mapping);
    await Promise.race([localLocks.get(mapping), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())))]);
  }
  let resolve!: () => void;
  localLocks.set(mapping, new Promise<void>((r) => { resolve = r; }));
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      localLocks.delete(mapping);
      resolve();
    },
  };
}

function lockedError(mapping: string): LockedError {
  return new LockedError('LOCKED', `mapping '${mapping}' is already running in another process or replica`, {
    hint: 'wait for that run to finish (segsync run --wait), or check `segsync runs` for a stuck run',
  });
}
