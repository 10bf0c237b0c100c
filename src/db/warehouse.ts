import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import lockfile from 'proper-lockfile';
import { SegsyncError } from '../errors.ts';
import type { Logger } from '../log.ts';

/**
 * The warehouse and state database, reached through `pg` whether it is a real PostgreSQL server or the
 * embedded PGlite. One SQL dialect, one code path.
 */
export interface Warehouse {
  pool: pg.Pool;
  /** true when this is the embedded PGlite: one session, one connection, one process. */
  embedded: boolean;
  /** Where the data lives, safe to print (no password). */
  description: string;
  close(): Promise<void>;
}

export interface WarehouseOptions {
  /** postgres:// URL of a real server; without one the embedded database is used. */
  url?: string | undefined;
  /** Folder for the embedded database (default `.segsync/pgdata` under the working directory). */
  dataDir?: string | undefined;
  /** Pool size for a real server. */
  maxConnections?: number;
  log: Logger;
}

/** Where the warehouse URL comes from: SEGSYNC_DATABASE_URL first, then `warehouse.url` in config. */
export function warehouseUrl(configUrl: string | undefined): string | undefined {
  return process.env.SEGSYNC_DATABASE_URL || configUrl || undefined;
}

export async function openWarehouse(opts: WarehouseOptions): Promise<Warehouse> {
  return opts.url ? openServer(opts.url, opts) : openEmbedded(opts);
}

/** A URL with its password blanked, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable database URL)';
  }
}

function poolDefaults(): pg.PoolConfig {
  return {
    application_name: 'segsync',
    connectionTimeoutMillis: 15_000,
    idleTimeoutMillis: 30_000,
    // Model builds and plans are single long statements; the guard is against a wedged connection, not work.
    statement_timeout: Number(process.env.SEGSYNC_STATEMENT_TIMEOUT_MS ?? 30 * 60_000),
    // Every session computes in UTC: a naive payment_date means UTC, and as-of instants compare the same
    // way on every host whatever its TZ.
    options: '-c TimeZone=UTC',
  };
}

async function openServer(url: string, opts: WarehouseOptions): Promise<Warehouse> {
  const pool = new pg.Pool({ ...poolDefaults(), connectionString: url, max: opts.maxConnections ?? 8 });
  pool.on('error', (err) => opts.log.error({ err: err.message }, 'idle warehouse connection failed; it will be replaced'));
  const description = redactUrl(url);
  try {
    await pool.query('select 1');
  } catch (err) {
    await pool.end().catch(() => {});
    throw new SegsyncError('WAREHOUSE_UNREACHABLE', `cannot connect to the warehouse at ${description}: ${(err as Error).message}`, {
      cause: err,
      hint: 'check SEGSYNC_DATABASE_URL (or warehouse.url in config/segsync.yaml), or unset both to use the embedded database',
    });
  }
  return { pool, embedded: false, description, close: () => pool.end() };
}

/**
 * PGlite served over a loopback socket to `pg`. PGlite is one Postgres session: several pg clients would be
 * multiplexed onto it and their transactions and advisory locks would interleave. So the embedded mode uses
 * exactly one connection at work (pool max 1), and a lock file keeps a second process out of
 * the data folder. Run locks then only need to hold within this process (see state/locks.ts).
 */
async function openEmbedded(opts: WarehouseOptions): Promise<Warehouse> {
  const dataDir = path.resolve(opts.dataDir ?? path.join(process.cwd(), '.segsync', 'pgdata'));
  await mkdir(dataDir, { recursive: true });
  let releaseLock: () => Promise<void>;
  try {
    releaseLock = await lockfile.lock(dataDir, { stale: 30_000, update: 5_000, lockfilePath: `${dataDir}.lock` });
  } catch (err) {
    throw new SegsyncError('EMBEDDED_IN_USE', `the embedded database at ${dataDir} is in use by another segsync process`, {
      cause: err,
      hint: 'wait for it to finish, or point SEGSYNC_DATABASE_URL at a PostgreSQL server to run several processes',
    });
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create({ dataDir });
  // The pool below never has more than one client at work. The server still accepts a second socket because
  // pg destroys a client whose query failed and opens a new one while the old socket is still closing; with
  // room for only one, that new connection is dropped ("Connection terminated unexpectedly").
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 2 });
  await server.start();
  const [host, port] = server.getServerConn().split(':');
  const pool = new pg.Pool({ ...poolDefaults(), host, port: Number(port), user: 'postgres', database: 'postgres', max: 1 });
  pool.on('error', (err) => opts.log.error({ err: err.message }, 'embedded database connection failed'));
  let closed = false;
  return {
    pool,
    embedded: true,
    description: `embedded PGlite at ${path.relative(process.cwd(), dataDir) || dataDir}`,
    async close() {
      if (closed) return;
      closed = true;
      await pool.end().catch(() => {});
      await server.stop().catch(() => {});
      await db.close().catch(() => {});
      await releaseLock();
    },
  };
}
