import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { DataError, LockedError, SegsyncError } from '../src/errors.ts';
import { createRootLogger } from '../src/log.ts';
import { buildModels, modelFreshness, renderModel } from '../src/models/index.ts';
import { build, currentByUser, seedSchema } from './helpers/models.ts';
import { freshWarehouse, useFreshWarehouse, WAREHOUSE_KINDS } from './helpers/pg.ts';

function dataError(code: string, ...patterns: RegExp[]) {
  return (err: unknown) => {
    assert.ok(err instanceof DataError, `a DataError, got ${String(err)}`);
    assert.equal(err.code, code);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  };
}

/** A logger whose lines the test can read. */
function capturingLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: createRootLogger({ level: 'info', pretty: false, destination }), lines };
}

for (const kind of WAREHOUSE_KINDS) {
  describe(`models on bad or unusual input (${kind})`, () => {
    let pool: pg.Pool;
    useFreshWarehouse(kind, (w) => { pool = w.pool; });

    test('a missing payments relation is an error naming it', async () => {
      await pool.query('CREATE SCHEMA nothing');
      await assert.rejects(build(pool, 'nothing', '2024-01-01T00:00:00Z'), dataError('PAYMENTS_MISSING', /nothing\.fact_payments does not exist/));
      assert.equal(await modelFreshness(pool, 'nothing'), null, 'no history yet');
    });

    test('a payments relation without a needed column is an error naming the relation and the column', async () => {
      await pool.query('CREATE SCHEMA nocol');
      await pool.query('CREATE TABLE nocol.fact_payments (user_id text, payment_id text, payment_date timestamptz, amount numeric)');
      await assert.rejects(build(pool, 'nocol', '2024-01-01T00:00:00Z'), dataError('PAYMENTS_COLUMN_MISSING', /nocol\.fact_payments/, /payment_amount/));
      // ...and nothing was created in the failed build's transaction.
      const { rows } = await pool.query(`SELECT to_regclass('nocol._segsync_rfm_state') AS t`);
      assert.equal(rows[0].t, null);
    });

    test('a column of an unusable type is an error naming the column and its type', async () => {
      await pool.query('CREATE SCHEMA badtype');
      await pool.query('CREATE TABLE badtype.fact_payments (user_id text, payment_id text, payment_date text, payment_amount numeric)');
      await assert.rejects(build(pool, 'badtype', '2024-01-01T00:00:00Z'), dataError('PAYMENTS_COLUMN_TYPE', /payment_date is text/));
    });

    test('NULL keys or dates are an error with the count, not silently dropped', async () => {
      await seedSchema(pool, 'nulls', [{ user_id: 'a', payment_id: 'p1', payment_date: '2023-01-01T00:00:00Z', payment_amount: '1' }]);
      await pool.query(`INSERT INTO nulls.fact_payments VALUES (NULL, 'p2', '2023-02-01', 3), (NULL, 'p3', '2023-02-02', 3)`);
      await assert.rejects(build(pool, 'nulls', '2024-01-01T00:00:00Z'), dataError('PAYMENTS_NULL', /2 row\(s\) with NULL user_id/, /nulls\.fact_payments/));
    });

    test('an as-of instant before all payments gives empty models and a warning', async () => {
      await seedSchema(pool, 'early', [{ user_id: 'a', payment_id: 'p1', payment_date: '2023-06-01T12:00:00Z', payment_amount: '10' }]);
      const { log, lines } = capturingLogger();
      const s = await buildModels(pool, { schema: 'early', payments: 'fact_payments', asOf: new Date('2023-01-01T00:00:00Z'), log });
      assert.equal(s.users, 0);
      assert.equal(s.snapshots, 0);
      assert.deepEqual(s.segments, {});
      assert.match(s.warnings.join('\n'), /as-of 2023-01-01T00:00:00.000Z is before the first payment \(2023-06-01T12:00:00.000Z\)/);
      assert.ok(lines.some((l) => l.level === 40 && /before the first payment/.test(l.msg)), 'the warning is logged');
      const { rows } = await pool.query('SELECT COUNT(*)::int AS n FROM early.rfm_current_segments');
      assert.equal(rows[0].n, 0);
      assert.equal(await modelFreshness(pool, 'early'), null);
      // Moving as-of past the payment fills the models incrementally.
      const later = await build(pool, 'early', '2023-07-01T00:00:00Z');
      assert.equal(later.mode, 'incremental');
      assert.equal(later.users, 1);
      assert.equal((await modelFreshness(pool, 'early'))?.toISOString(), '2023-07-01T00:00:00.000Z');
    });

    test('non-positive amounts count as is: toward frequency and recency, summed into monetary, with a warning', async () => {
      await seedSchema(pool, 'refunds', [
        { user_id: 'a', payment_id: 'a1', payment_date: '2023-03-01T10:00:00Z', payment_amount: '100.00' },
        { user_id: 'a', payment_id: 'a2', payment_date: '2023-03-20T10:00:00Z', payment_amount: '-40.00' },
        { user_id: 'b', payment_id: 'b1', payment_date: '2023-03-05T10:00:00Z', payment_amount: '0' },
        { user_id: 'c', payment_id: 'c1', payment_date: '2023-03-06T10:00:00Z', payment_amount: '70.00' },
      ]);
      const s = await build(pool, 'refunds', '2023-04-01T00:00:00Z');
      assert.match(s.warnings.join('\n'), /2 payment\(s\) in refunds\.fact_payments have payment_amount <= 0; they count as is/);
      const { rows } = await pool.query<{ user_id: string; frequency: number; monetary: string; max_payment_date: Date }>(
        'SELECT user_id, frequency, monetary, max_payment_date FROM refunds.rfm_current_segments ORDER BY user_id');
      assert.deepEqual(rows.map((r) => [r.user_id, r.frequency, r.monetary, r.max_payment_date.toISOString()]), [
        ['a', 2, '60.00', '2023-03-20T10:00:00.000Z'],
        ['b', 1, '0', '2023-03-05T10:00:00.000Z'],
        ['c', 1, '70.00', '2023-03-06T10:00:00.000Z'],
      ]);
    });

    test('a payment_id loaded twice counts once (frequency and monetary)', async () => {
      const row = { user_id: 'a', payment_id: 'dup', payment_date: '2023-03-01T10:00:00Z', payment_amount: '25.00' };
      await seedSchema(pool, 'dups', [row, row, { ...row, payment_id: 'other', payment_amount: '5.00' }]);
      await build(pool, 'dups', '2023-04-01T00:00:00Z');
      const cur = await currentByUser(pool, 'dups');
      const a = cur.get('a') as unknown as { frequency: number; monetary: string };
      assert.equal(a.frequency, 2);
      assert.equal(a.monetary, '30.00');
    });

    test('payment_date as timestamp without time zone, amounts as integers, ids as bigint', async () => {
      await pool.query('CREATE SCHEMA typed');
      await pool.query('CREATE TABLE typed.payments (user_id bigint, payment_id bigint, payment_date timestamp, payment_amount integer)');
      await pool.query(`INSERT INTO typed.payments VALUES (1, 10, '2023-02-01 00:00:00', 5), (1, 11, '2023-02-10 08:00:00', 7), (2, 12, '2023-02-11 08:00:00', 1)`);
      const s = await build(pool, 'typed', '2023-03-01T00:00:00Z', { payments: 'typed.payments' });
      assert.equal(s.users, 2);
      const { rows } = await pool.query('SELECT user_id, frequency, monetary FROM typed.rfm_current_segments ORDER BY user_id');
      assert.deepEqual(rows.map((r) => [r.user_id, r.frequency, r.monetary]), [['1', 2, '12'], ['2', 1, '1']]);
      const snaps = await pool.query(`SELECT COUNT(*)::int AS n FROM typed.rfm_segments_hist WHERE snapshot_at = '2023-02-01T00:00:00Z'`);
      assert.equal(snaps.rows[0].n, 1, 'a naive timestamp is read as UTC: the payment at 2023-02-01 00:00 is in that snapshot');
    });
  });
}

test('a second build on the same schema while one runs is refused at once (real Postgres)', async () => {
  const w = await freshWarehouse('postgres');
  try {
    await seedSchema(w.warehouse.pool, 'busy', [{ user_id: 'a', payment_id: 'p1', payment_date: '2023-01-01T00:00:00Z', payment_amount: '1' }]);
    const other = await w.warehouse.pool.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SELECT pg_advisory_xact_lock(hashtext('segsync:models:busy'))`);
      await assert.rejects(build(w.warehouse.pool, 'busy', '2023-02-01T00:00:00Z'), (err: unknown) => {
        assert.ok(err instanceof LockedError);
        assert.equal(err.code, 'MODELS_LOCKED');
        assert.match(err.message, /another models build is running on schema busy/);
        return true;
      });
      await other.query('ROLLBACK');
    } finally {
      other.release();
    }
    assert.equal((await build(w.warehouse.pool, 'busy', '2023-02-01T00:00:00Z')).users, 1, 'runs once the other is done');
  } finally {
    await w.cleanup();
  }
});

describe('model template rendering', () => {
  test('renders ref(), var() with defaults and drops config()', () => {
    const sql = renderModel('m', `{{ config(materialized='table') }}SELECT '{{ var("as_of", "now") }}', '{{ var('x') }}' FROM {{ ref('fact_payments') }}`, {
      refs: { fact_payments: '"s"."p"' }, vars: { x: '1' },
    });
    assert.equal(sql, `SELECT 'now', '1' FROM "s"."p"`);
  });

  test('refuses what it cannot render, naming the model and the expression', () => {
    const refuses = (sql: string, why: RegExp) => assert.throws(() => renderModel('m', sql, { refs: {}, vars: {} }), (err: unknown) => {
      assert.ok(err instanceof SegsyncError);
      assert.equal(err.code, 'MODEL_TEMPLATE');
      assert.match(err.message, /^model m: cannot render/);
      assert.match(err.message, why);
      return true;
    });
    refuses(`{% if is_incremental() %} x {% endif %}`, /no \{% %\} blocks/);
    refuses(`{{ source('a', 'b') }}`, /only ref\(\), var\(\) and config\(\)/);
    refuses(`{{ ref('unknown') }}`, /no relation is known for ref\('unknown'\)/);
    refuses(`{{ var('needed') }}`, /variable 'needed' has no value and no default/);
  });
});
