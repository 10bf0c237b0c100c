import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { listMigrations, migrate } from '../src/state/migrate.ts';
import { findReceipts } from '../src/state/find-receipts.ts';
import { maintainReceiptPartitions } from '../src/state/receipt-partitions.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';

// Receipts are partitioned by the month their run started (migration 091); an existing ledger's receipts are
// moved into their months at upgrade, old months leave by dropping their partition, and a record's history
// is still found across them.
let db: TestDatabase;
let pool: pg.Pool;
before(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.url });
});
after(async () => { await pool.end(); await db.drop(); });

test('an existing unpartitioned ledger is converted: every receipt kept, in the month of its run', async () => {
  // The ledger as it was before 091: every earlier migration applied, receipts in one table.
  const client = await pool.connect();
  try {
    await client.query('CREATE SCHEMA segsync');
    await client.query('CREATE TABLE segsync.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    for (const m of (await listMigrations()).filter((x) => x.version < 91)) {
      await client.query(m.sql.replaceAll(':schema', 'segsync'));
      await client.query('INSERT INTO segsync.migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
    }
    assert.equal((await client.query(`SELECT relkind::text AS k FROM pg_class WHERE oid = 'segsync.receipts'::regclass`)).rows[0].k, 'r');
    for (const [id, started] of [[1, '2024-01-15T10:00:00Z'], [2, '2024-02-29T23:59:00Z'], [3, '2024-03-01T00:01:00Z']] as const) {
      await client.query(`INSERT INTO segsync.runs (id, mapping, status, config_hash, destination, started_at, actor_type, actor_id)
        VALUES ($1, 'm', 'succeeded', 'h', 'files', $2, 'system', 'test')`, [id, started]);
      await client.query(`INSERT INTO segsync.receipts (run_id, mapping, key, op, status, recorded_at)
        SELECT $1, 'm', 'k' || g, 'update', 'delivered', $2::timestamptz + interval '1 day' FROM generate_series(1, 50) g`, [id, started]);
    }
  } finally {
    client.release();
  }
  // 091 and 092 convert the ledger; whatever came later applies after them
  const pending = (await listMigrations()).filter((x) => x.version >= 91).map((x) => x.version);
  assert.deepEqual(pending.slice(0, 2), [91, 92]);
  assert.deepEqual(await migrate(pool, 'segsync'), pending);
  const parts = (await pool.query<{ name: string; n: number }>(
    `SELECT c.relname AS name, (SELECT count(*)::int FROM segsync.receipts r WHERE r.tableoid = c.oid) AS n
     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'segsync.receipts'::regclass ORDER BY 1`)).rows;
  const byName = Object.fromEntries(parts.map((p) => [p.name, p.n]));
  // run 2 started on Feb 29 at 23:59 UTC: its receipts (recorded in March) are in February with their run
  assert.equal(byName.receipts_p202401, 50);
  assert.equal(byName.receipts_p202402, 50);
  assert.equal(byName.receipts_p202403, 50);
  assert.equal(byName.receipts_default, 0);
  assert.equal((await pool.query(`SELECT relkind::text AS k FROM pg_class WHERE oid = 'segsync.receipts'::regclass`)).rows[0].k, 'p');
  // the view over receipts was made again, and one record's history spans the months
  assert.equal((await pool.query(`SELECT count(*)::int AS n FROM segsync.run_item_states`)).rows[0].n, 0);
  const history = await findReceipts(pool, 'segsync', { mapping: 'm', key: 'k7', limit: 10 });
  assert.deepEqual(history.map((r) => Number(r.run_id)), [3, 2, 1]);
  // every partition has the primary key (run_id, key, period), which a record's history probes once per run,
  // and the run page's partial index of undelivered receipts (070); 092's two others are gone again (094)
  const indexes = (await pool.query<{ name: string }>(`SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'segsync' AND tablename = 'receipts' ORDER BY 1`)).rows.map((r) => r.name);
  assert.deepEqual(indexes, ['receipts_pkey', 'receipts_undelivered']);
  const monthIndexes = (await pool.query<{ def: string }>(`SELECT indexdef AS def FROM pg_indexes WHERE schemaname = 'segsync' AND tablename = 'receipts_p202402' ORDER BY 1`)).rows.map((r) => r.def.replace(/^.* USING btree /, '')).sort();
  assert.deepEqual(monthIndexes, ["(run_id, key, period)", "(run_id, op, status) WHERE (status <> 'delivered'::text)"].sort());
  // a second receipt for one record of one run is still refused
  await assert.rejects(pool.query(`INSERT INTO segsync.receipts (run_id, period, mapping, key, op, status) VALUES (2, '2024-02-01', 'm', 'k7', 'update', 'delivered')`), /duplicate key/);
});

test('retention drops whole months past it, keeps the rest, and makes this and next month ahead', async () => {
  const dropped = await maintainReceiptPartitions(pool, 'segsync', 25);
  // 2024-01..03 ended more than 25 months before this test runs only from 2026-05 on; compute what must go
  const now = new Date();
  const expected = ['2024-01', '2024-02', '2024-03'].filter((m) => {
    const end = new Date(`${m}-01T00:00:00Z`);
    end.setUTCMonth(end.getUTCMonth() + 1 + 25);
    return end.getTime() <= Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  });
  assert.deepEqual(dropped, expected);
  const names = (await pool.query<{ name: string }>(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'segsync.receipts'::regclass`)).rows.map((r) => r.name);
  const month = (d: Date) => `receipts_p${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
  const next = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  assert.ok(names.includes(month(now)) && names.includes(month(next)), names.join(','));
  // a short retention drops every month that ended before this one, in O(1) each (no DELETE)
  const all = await maintainReceiptPartitions(pool, 'segsync', 1);
  assert.deepEqual(all, ['2024-01', '2024-02', '2024-03'].filter((m) => !expected.includes(m)));
  assert.equal((await pool.query(`SELECT count(*)::int AS n FROM segsync.receipts`)).rows[0].n, 0);
  assert.equal((await maintainReceiptPartitions(pool, 'segsync', 1)).length, 0);
});
