import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { build, historyRows, seedSchema } from './helpers/models.ts';
import { insertPayments, randomPayments } from './helpers/payments.ts';
import { freshWarehouse, WAREHOUSE_KINDS } from './helpers/pg.ts';

/**
 * Incremental builds must give exactly what a full rebuild gives. Each check builds schema `inc`
 * incrementally and schema `<name>` from scratch over the same payments (inc.fact_payments), then compares
 * every column of every row of both histories and both current tables.
 */
async function assertSameAsFullBuild(pool: pg.Pool, name: string, asOf: string, inc = 'inc'): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
  const full = await build(pool, name, asOf, { payments: `${inc}.fact_payments`, fullRefresh: true });
  assert.equal(full.mode, 'full');
  const incremental = await historyRows(pool, `${inc}.rfm_segments_hist`);
  assert.ok(incremental.length > 0);
  assert.deepEqual(incremental, await historyRows(pool, `${name}.rfm_segments_hist`), 'history: incremental = full');
  assert.deepEqual(await historyRows(pool, `${inc}.rfm_current_segments`), await historyRows(pool, `${name}.rfm_current_segments`), 'current: incremental = full');
  const bookkept = await pool.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM ${inc}._segsync_rfm_snapshots s
    FULL JOIN (SELECT DISTINCT snapshot_at FROM ${inc}.rfm_segments_hist) h USING (snapshot_at)
    WHERE s.snapshot_at IS NULL OR h.snapshot_at IS NULL`);
  assert.equal(bookkept.rows[0]?.n, 0, 'the snapshot bookkeeping matches the history');
}

async function snapshotCount(pool: pg.Pool, schema: string, from: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`SELECT COUNT(DISTINCT snapshot_at)::int AS n FROM ${schema}.rfm_segments_hist WHERE snapshot_at >= $1`, [from]);
  return rows[0]?.n ?? 0;
}

for (const kind of WAREHOUSE_KINDS) {
  describe(`incremental model builds (${kind})`, () => {
    let pool: pg.Pool;
    let cleanup: () => Promise<void>;
    before(async () => {
      const w = await freshWarehouse(kind);
      pool = w.warehouse.pool;
      cleanup = () => w.cleanup();
      await seedSchema(pool, 'inc', randomPayments(11, 150, new Date('2023-01-02T00:00:00Z'), new Date('2023-11-20T00:00:00Z')));
      const first = await build(pool, 'inc', '2023-11-20T12:00:00Z');
      assert.equal(first.mode, 'full');
      assert.equal(first.reason, 'first build');
    });
    after(() => cleanup());

    test('after a new month: equals a full rebuild, and only the new month start and as-of are recomputed', async () => {
      await insertPayments(pool, randomPayments(12, 60, new Date('2023-11-20T12:00:01Z'), new Date('2023-12-10T00:00:00Z'), 'dec'), 'inc.fact_payments');
      const s = await build(pool, 'inc', '2023-12-10T08:00:00Z');
      assert.equal(s.mode, 'incremental');
      assert.equal(s.snapshotsRecomputed, 2, '2023-12-01 and the new as-of instant');
      assert.ok(s.snapshotsRecomputed < s.snapshots);
      await assertSameAsFullBuild(pool, 'full_new_month', '2023-12-10T08:00:00Z');
    });

    test('after a late payment in a past month: rebuilds exactly the snapshots after it, and equals a full rebuild', async () => {
      await insertPayments(pool, [
        { user_id: 'u3', payment_id: 'late-1', payment_date: '2023-06-15T10:00:00Z', payment_amount: '700.00' },
        { user_id: 'newcomer', payment_id: 'late-2', payment_date: '2023-07-02T00:00:00Z', payment_amount: '5.00' },
      ], 'inc.fact_payments');
      const expected = await snapshotCount(pool, 'inc', '2023-06-15T10:00:00Z');
      const s = await build(pool, 'inc', '2023-12-10T08:00:00Z');
      assert.equal(s.mode, 'incremental');
      assert.equal(s.snapshotsRecomputed, expected, 'snapshots from 2023-07-01 on');
      assert.ok(s.snapshotsRecomputed < s.snapshots);
      await assertSameAsFullBuild(pool, 'full_late', '2023-12-10T08:00:00Z');
    });

    test('an edited amount and a deleted payment in past months are detected', async () => {
      await pool.query(`UPDATE inc.fact_payments SET payment_amount = payment_amount + 1000 WHERE payment_id = (
        SELECT payment_id FROM inc.fact_payments WHERE payment_date BETWEEN '2023-09-01' AND '2023-09-30' ORDER BY payment_id LIMIT 1)`);
      const edited = await build(pool, 'inc', '2023-12-10T08:00:00Z');
      assert.equal(edited.snapshotsRecomputed, await snapshotCount(pool, 'inc', '2023-10-01T00:00:00Z'));
      await assertSameAsFullBuild(pool, 'full_edit', '2023-12-10T08:00:00Z');

      await pool.query(`DELETE FROM inc.fact_payments WHERE payment_id = (
        SELECT payment_id FROM inc.fact_payments WHERE payment_date BETWEEN '2023-04-01' AND '2023-04-30' ORDER BY payment_id LIMIT 1)`);
      const deleted = await build(pool, 'inc', '2023-12-10T08:00:00Z');
      assert.equal(deleted.snapshotsRecomputed, await snapshotCount(pool, 'inc', '2023-05-01T00:00:00Z'));
      await assertSameAsFullBuild(pool, 'full_delete', '2023-12-10T08:00:00Z');
    });

    test('nothing changed: nothing is recomputed and the tables stay as they are', async () => {
      const before = await historyRows(pool, 'inc.rfm_segments_hist');
      const s = await build(pool, 'inc', '2023-12-10T08:00:00Z');
      assert.equal(s.mode, 'incremental');
      assert.equal(s.snapshotsRecomputed, 0);
      assert.deepEqual(await historyRows(pool, 'inc.rfm_segments_hist'), before);
    });

    test('moving the as-of instant back drops the later snapshots and equals a full build at that instant', async () => {
      const s = await build(pool, 'inc', '2023-10-20T00:00:00Z');
      assert.equal(s.mode, 'incremental');
      assert.equal(s.snapshotsRecomputed, 1, 'only the new as-of instant');
      const latest = await pool.query<{ at: Date }>('SELECT MAX(snapshot_at) AS at FROM inc.rfm_segments_hist');
      assert.equal(latest.rows[0]?.at.toISOString(), '2023-10-20T00:00:00.000Z');
      await assertSameAsFullBuild(pool, 'full_back', '2023-10-20T00:00:00Z');
      const forward = await build(pool, 'inc', '2023-12-10T08:00:00Z');
      assert.equal(forward.snapshotsRecomputed, 3, '2023-11-01, 2023-12-01 and the as-of instant');
      await assertSameAsFullBuild(pool, 'full_forward', '2023-12-10T08:00:00Z');
    });

    test('a changed model SQL (recorded hash differs) forces a full build', async () => {
      await pool.query(`UPDATE inc._segsync_rfm_state SET model_hash = 'an older model'`);
      const s = await build(pool, 'inc', '2023-12-10T08:00:00Z');
      assert.equal(s.mode, 'full');
      assert.match(s.reason, /model SQL changed/);
      assert.equal(s.snapshotsRecomputed, s.snapshots);
      await assertSameAsFullBuild(pool, 'full_model', '2023-12-10T08:00:00Z');
    });

    test('a build that fails half-way leaves the previous models and bookkeeping exactly as they were', async () => {
      const hist = await historyRows(pool, 'inc.rfm_segments_hist');
      const current = await historyRows(pool, 'inc.rfm_current_segments');
      const state = await pool.query('SELECT as_of, model_hash FROM inc._segsync_rfm_state');
      // The build's last write is the state row: make it fail there, after the history was rewritten.
      await pool.query(`CREATE FUNCTION inc.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$`);
      await pool.query('CREATE TRIGGER refuse BEFORE UPDATE ON inc._segsync_rfm_state FOR EACH ROW EXECUTE FUNCTION inc.refuse()');
      await insertPayments(pool, [{ user_id: 'u9', payment_id: 'late-3', payment_date: '2023-05-05T00:00:00Z', payment_amount: '1.00' }], 'inc.fact_payments');
      await assert.rejects(build(pool, 'inc', '2024-01-05T00:00:00Z'), /refused by test/);
      await pool.query('DROP TRIGGER refuse ON inc._segsync_rfm_state');
      assert.deepEqual(await historyRows(pool, 'inc.rfm_segments_hist'), hist);
      assert.deepEqual(await historyRows(pool, 'inc.rfm_current_segments'), current);
      assert.deepEqual((await pool.query('SELECT as_of, model_hash FROM inc._segsync_rfm_state')).rows, state.rows);
      // ...and the next build still sees the late payment as new.
      const s = await build(pool, 'inc', '2024-01-05T00:00:00Z');
      assert.equal(s.snapshotsRecomputed, await snapshotCount(pool, 'inc', '2023-06-01T00:00:00Z'));
      await assertSameAsFullBuild(pool, 'full_after_failure', '2024-01-05T00:00:00Z');
    });

    test('a late payment just before the previous as-of instant, and a re-sent old payment_id, with the next month', async () => {
      // The last build was as of 2024-01-05. A payment of 2024-01-04 arrives late: the kept snapshot of
      // 2024-01-05 never saw it, so the refresh must start from the month start before, not from that instant.
      const old = await pool.query<{ payment_id: string; user_id: string }>(
        `SELECT payment_id, user_id FROM inc.fact_payments WHERE payment_date < '2023-06-01' ORDER BY payment_id LIMIT 1`);
      const resent = old.rows[0] ?? assert.fail('an old payment');
      await insertPayments(pool, [
        { user_id: 'u7', payment_id: 'late-4', payment_date: '2024-01-04T23:00:00Z', payment_amount: '3.00' },
        // the same payment loaded again in the new month: the earliest row counts, this one does not
        { user_id: resent.user_id, payment_id: resent.payment_id, payment_date: '2024-01-20T00:00:00Z', payment_amount: '999.00' },
        { user_id: 'u8', payment_id: 'feb-1', payment_date: '2024-02-03T00:00:00Z', payment_amount: '8.00' },
      ], 'inc.fact_payments');
      const s = await build(pool, 'inc', '2024-02-10T00:00:00Z');
      assert.equal(s.mode, 'incremental');
      assert.equal(s.snapshotsRecomputed, 2, '2024-02-01 and the as-of instant');
      await assertSameAsFullBuild(pool, 'full_edge', '2024-02-10T00:00:00Z');
    });

    test('with a primary key on payment_id (no repeats possible): a new month and a late payment equal a full rebuild', async () => {
      await pool.query('CREATE SCHEMA keyed');
      await pool.query('CREATE TABLE keyed.fact_payments (user_id text, payment_id text PRIMARY KEY, payment_date timestamptz, payment_amount numeric)');
      await insertPayments(pool, randomPayments(21, 90, new Date('2023-02-01T00:00:00Z'), new Date('2023-09-25T00:00:00Z')), 'keyed.fact_payments');
      await build(pool, 'keyed', '2023-10-01T00:00:00Z');
      await insertPayments(pool, [
        ...randomPayments(22, 40, new Date('2023-10-01T00:00:01Z'), new Date('2023-10-30T00:00:00Z'), 'oct'),
        { user_id: 'u1', payment_id: 'keyed-late', payment_date: '2023-08-08T00:00:00Z', payment_amount: '44.00' },
      ], 'keyed.fact_payments');
      const s = await build(pool, 'keyed', '2023-11-01T00:00:00Z');
      assert.equal(s.mode, 'incremental');
      assert.equal(s.snapshotsRecomputed, 3, '2023-09-01, 2023-10-01 and 2023-11-01');
      await assertSameAsFullBuild(pool, 'full_keyed', '2023-11-01T00:00:00Z', 'keyed');
    });
  });
}
