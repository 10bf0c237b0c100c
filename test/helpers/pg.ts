import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import pg from 'pg';
import { openWarehouse, type Warehouse } from '../../src/db/warehouse.ts';
import { createRootLogger } from '../../src/log.ts';

/** The PostgreSQL server tests use (CI and developer machines: trust auth on 127.0.0.1:5432). */
export const ADMIN_URL = process.env.SEGSYNC_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export const testLog = createRootLogger({ level: process.env.SEGSYNC_TEST_LOG_LEVEL ?? 'silent', pretty: false });

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** A new, empty database on the test server; drop() removes it (terminating leftover connections). */
export async function createTestDatabase(prefix = 'segsync_test'): Promise<TestDatabase> {
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export type WarehouseKind = 'postgres' | 'embedded';

/** Both warehouse kinds the product supports; tests that must hold on both loop over this. */
export const WAREHOUSE_KINDS: WarehouseKind[] = ['postgres', 'embedded'];

/** A fresh warehouse of the given kind and a cleanup that removes every trace of it. */
export async function freshWarehouse(kind: WarehouseKind): Promise<{ warehouse: Warehouse; url?: string; dataDir?: string; cleanup(): Promise<void> }> {
  if (kind === 'postgres') {
    const db = await createTestDatabase();
    const handle = {
      warehouse: await openWarehouse({ url: db.url, log: testLog }),
      url: db.url,
      async cleanup() { await handle.warehouse.close(); await db.drop(); },
    };
    return handle;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'segsync-pglite-'));
  const dataDir = path.join(dir, 'pgdata');
  const handle = {
    warehouse: await openWarehouse({ dataDir, log: testLog }),
    dataDir,
    async cleanup() { await handle.warehouse.close(); await rm(dir, { recursive: true, force: true }); },
  };
  return handle;
}

/**
 * A fresh warehouse of `kind` for the enclosing describe block (or file): created before its tests (handed to
 * `onReady` with its URL or data folder), removed after them.
 */
export function useFreshWarehouse(kind: WarehouseKind, onReady: (w: Warehouse, where: { url?: string; dataDir?: string }) => void | Promise<void>): void {
  let handle: Awaited<ReturnType<typeof freshWarehouse>> | undefined;
  before(async () => {
    handle = await freshWarehouse(kind);
    await onReady(handle.warehouse, handle);
  });
  after(() => handle?.cleanup());
}
