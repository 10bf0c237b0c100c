import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { renderModel } from '../src/models/index.ts';
import { build, historyRows, seedSchema } from './helpers/models.ts';
import { randomPayments } from './helpers/payments.ts';
import { useFreshWarehouse, WAREHOUSE_KINDS } from './helpers/pg.ts';

const SEED_SQL = await readFile(new URL('../bench/seed_baseline.sql', import.meta.url), 'utf8');

/** Runs the seed's history SQL (PARTITION BY fixed) over `schema`'s payments into `schema`.seed_hist. */
async function runSeedBaseline(pool: pg.Pool, schema: string, asOf: string): Promise<void> {
  // The seed's calendar: month starts up to as_of only (flaw 3 is about future months; keep them out).
  await pool.query(`CREATE TABLE ${schema}.dim_calendar AS
    SELECT generate_series(date_trunc('month', (SELECT MIN(payment_date) FROM ${schema}.fact_payments)) - interval '3 months',
                           $1::timestamptz, interval '1 month') AS date_month`, [asOf]);
  const sql = renderModel('seed_baseline', SEED_SQL, {
    refs: { fact_payments: `${schema}.fact_payments`, dim_calendar: `${schema}.dim_calendar` },
    vars: { as_of: asOf },
  });
  await pool.query(`CREATE TABLE ${schema}.seed_hist AS ${sql}`);
}

/** The seed's rows in the models' column set (it has no max_payment_date or recency_days). */
async function seedRows(pool: pg.Pool, schema: string): Promise<string[]> {
  const { rows } = await pool.query<{ line: string }>(
    `SELECT concat_ws(' | ', user_id, date_month, recency, frequency, monetary, recency_percentile, frequency_percentile,
            monetary_percentile, recency_score, frequency_score, monetary_score, rfm_segment) AS line
       FROM ${schema}.seed_hist ORDER BY date_month, user_id`);
  return rows.map((r) => r.line);
}

async function modelRowsLikeSeed(pool: pg.Pool, schema: string): Promise<string[]> {
  const { rows } = await pool.query<{ line: string }>(
    `SELECT concat_ws(' | ', user_id, snapshot_at, recency, frequency, monetary, recency_percentile, frequency_percentile,
            monetary_percentile, recency_score, frequency_score, monetary_score, rfm_segment) AS line
       FROM ${schema}.rfm_segments_hist ORDER BY snapshot_at, user_id`);
  return rows.map((r) => r.line);
}

for (const kind of WAREHOUSE_KINDS) {
  describe(`RFM history against the seed's SQL (${kind})`, () => {
    let pool: pg.Pool;
    useFreshWarehouse(kind, (w) => { pool = w.pool; });

    for (const seed of [7, 2024]) {
      test(`equals the seed's history SQL with PARTITION BY fixed, row for row (random data, seed ${seed})`, async () => {
        const schema = `seed${seed}`;
        const asOf = '2024-03-17T09:30:00Z';
        const payments = randomPayments(seed, 250, new Date('2023-01-03T00:00:00Z'), new Date('2024-03-17T09:00:00Z'));
        // A payment exactly on a month start belongs to that month start's snapshot (payment_date <= snapshot).
        payments.push({ user_id: 'edge', payment_id: 'edge-1', payment_date: '2023-09-01T00:00:00Z', payment_amount: '12.34' });
        await seedSchema(pool, schema, payments);
        const summary = await build(pool, schema, asOf);
        await runSeedBaseline(pool, schema, asOf);

        const ours = await modelRowsLikeSeed(pool, schema);
        const theirs = await seedRows(pool, schema);
        assert.ok(theirs.length > 1000, `the comparison covers many rows (${theirs.length})`);
        assert.equal(ours.length, theirs.length, 'same number of (user, snapshot) rows');
        assert.deepEqual(ours, theirs);
        const months = await pool.query<{ n: number }>(`SELECT COUNT(DISTINCT date_month)::int AS n FROM ${schema}.seed_hist`);
        assert.equal(summary.snapshots, months.rows[0]?.n, 'the same snapshot instants as the seed');
        assert.ok(summary.snapshots >= 12, `a year of snapshots or more (${summary.snapshots})`);
        const edge = await pool.query(`SELECT MIN(snapshot_at) AS first FROM ${schema}.rfm_segments_hist WHERE user_id = 'edge'`);
        assert.equal((edge.rows[0].first as Date).toISOString(), '2023-09-01T00:00:00.000Z');
      });
    }

    test('the latest history snapshot equals the current model', async () => {
      const schema = 'latest';
      await seedSchema(pool, schema, randomPayments(99, 120, new Date('2023-05-01T00:00:00Z'), new Date('2024-01-20T00:00:00Z')));
      await build(pool, schema, '2024-01-25T18:00:00Z');
      const latest = await historyRows(pool, `(SELECT * FROM ${schema}.rfm_segments_hist WHERE snapshot_at = '2024-01-25T18:00:00Z') AS h`);
      const current = await historyRows(pool, `${schema}.rfm_current_segments`);
      assert.equal(current.length, 120);
      assert.deepEqual(current, latest);
    });

    test('snapshot_at is the state at that instant: a month-start row sees the previous month, not its own', async () => {
      const schema = 'semantics';
      await seedSchema(pool, schema, [
        { user_id: 'a', payment_id: 'a1', payment_date: '2023-03-10T00:00:00Z', payment_amount: '10' },
        { user_id: 'a', payment_id: 'a2', payment_date: '2023-04-10T00:00:00Z', payment_amount: '20' },
        { user_id: 'b', payment_id: 'b1', payment_date: '2023-04-20T00:00:00Z', payment_amount: '5' },
        // after the as-of instant: not yet known
        { user_id: 'c', payment_id: 'c1', payment_date: '2023-06-01T00:00:00Z', payment_amount: '5' },
      ]);
      const summary = await build(pool, schema, '2023-05-15T00:00:00Z');
      const { rows } = await pool.query<{ user_id: string; snapshot_at: Date; frequency: number; monetary: string; recency_days: number }>(
        `SELECT user_id, snapshot_at, frequency, monetary, recency_days FROM ${schema}.rfm_segments_hist ORDER BY snapshot_at, user_id`);
      assert.deepEqual(rows.map((r) => `${r.user_id} ${r.snapshot_at.toISOString().slice(0, 10)} f=${r.frequency} m=${r.monetary} d=${r.recency_days}`), [
        'a 2023-04-01 f=1 m=10 d=22',
        'a 2023-05-01 f=2 m=30 d=21',
        'b 2023-05-01 f=1 m=5 d=11',
        'a 2023-05-15 f=2 m=30 d=35',
        'b 2023-05-15 f=1 m=5 d=25',
      ]);
      assert.equal(summary.snapshots, 3);
      assert.equal(summary.users, 2);
    });
  });
}
