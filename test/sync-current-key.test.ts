import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DataError } from '../src/errors.ts';
import { planMapping, runMapping } from '../src/sync/run.ts';
import { keyEnforced } from '../src/sync/plan.ts';
import { sourceQuery } from '../src/sync/source.ts';
import { getMapping } from '../src/sync/connect.ts';
import { build } from './helpers/models.ts';
import { createPayments, insertPayments, randomPayments } from './helpers/payments.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, type TestProject } from './helpers/project.ts';

// The current model as `segsync models build` makes it is a view over the history's latest snapshot. Its key
// is proven by the history's primary key, not by grouping the whole model on every run; an edited view loses
// that proof and gets the full check again.
let db: TestDatabase;
let project: TestProject;
before(async () => {
  db = await createTestDatabase();
  project = await createProject({ url: db.url });
  await project.write('mappings/m.yaml', `name: cur
source: { model: rfm_current_segments, key: user_id }
destination: { connection: files, object: customers, match_key: customer_id }
fields:
  - { to: rfm_segment, from: rfm_segment }
`);
  await project.app(async (a) => {
    await createPayments(a.warehouse.pool, 'public.fact_payments');
    await insertPayments(a.warehouse.pool, randomPayments(3, 40, new Date('2024-01-01T00:00:00Z'), new Date('2024-06-01T00:00:00Z')), 'public.fact_payments');
    await build(a.warehouse.pool, 'public', '2024-06-01T00:00:00Z');
  });
});
after(async () => { await project.cleanup(); await db.drop(); });

const enforced = (a: Parameters<Parameters<TestProject['app']>[0]>[0]) => a.warehouse.pool.connect().then(async (c) => {
  try {
    return await keyEnforced(c, sourceQuery(getMapping(a.config, 'cur').value, 'public'));
  } finally {
    c.release();
  }
});

test('the built current-segments view has a key the history enforces, and a run delivers it', async () => {
  await project.app(async (a) => {
    // unique and NOT NULL by the primary key, never blank by the build's check: the plan scans for nothing
    assert.equal(await enforced(a), 'text, never blank');
    const r = await runMapping(a, 'cur');
    assert.equal(r.status, 'succeeded');
    const users = (await a.warehouse.pool.query('SELECT count(*)::int AS n FROM public.rfm_current_segments')).rows[0].n;
    assert.ok(users > 0);
    assert.equal(r.counts.delivered, users);
    // an incremental build keeps the proof
    await build(a.warehouse.pool, 'public', '2024-06-15T00:00:00Z');
    assert.equal(await enforced(a), 'text, never blank');
  });
});

test('a view edited after the build (duplicates) loses the proof, and the plan refuses its keys', async () => {
  await project.app(async (a) => {
    await a.warehouse.pool.query(`CREATE OR REPLACE VIEW public.rfm_current_segments AS
      SELECT * FROM public.rfm_segments_hist WHERE snapshot_at = (SELECT MAX(snapshot_at) FROM public.rfm_segments_hist)
      UNION ALL (SELECT * FROM public.rfm_segments_hist WHERE snapshot_at = (SELECT MAX(snapshot_at) FROM public.rfm_segments_hist) ORDER BY user_id LIMIT 1)`);
    assert.equal(await enforced(a), null);
    await assert.rejects(planMapping(a, 'cur'), (err: unknown) => err instanceof DataError && err.code === 'INVALID_KEYS' && /NON_UNIQUE_PRIMARY_KEY/.test(err.message));
    // a later build keeps the edited view (segsync does not overwrite it) and does not mark it
    await build(a.warehouse.pool, 'public', '2024-06-20T00:00:00Z', { fullRefresh: true });
    assert.equal(await enforced(a), null);
    // once the view is the model's SQL again, the next build marks it again
    await a.warehouse.pool.query('DROP VIEW public.rfm_current_segments');
    await build(a.warehouse.pool, 'public', '2024-06-25T00:00:00Z');
    assert.equal(await enforced(a), 'text, never blank');
  });
});

test('a blank customer id in the payments: the build keeps it without the not-blank check, the plan refuses it, and the check returns once it is gone', async () => {
  await project.app(async (a) => {
    const pool = a.warehouse.pool;
    const check = async () => (await pool.query(`SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = 'public.rfm_segments_hist'::regclass AND conname = 'rfm_segments_hist_user_id_not_blank' AND convalidated`)).rows[0].n;
    assert.equal(await check(), 1);
    // an incremental build whose new snapshot holds a blank key: the INSERT the check refuses is made without it
    await insertPayments(pool, [{ user_id: ' \t', payment_id: 'blank-1', payment_date: '2024-06-26T00:00:00Z', payment_amount: '12.50' }], 'public.fact_payments');
    await build(a.warehouse.pool, 'public', '2024-06-27T00:00:00Z');
    assert.equal(await check(), 0, 'the check is dropped, not violated');
    assert.equal((await pool.query(`SELECT count(*)::int AS n FROM public.rfm_current_segments WHERE user_id = E' \\t'`)).rows[0].n, 1, 'the row is kept');
    assert.equal(await enforced(a), 'text');
    await assert.rejects(planMapping(a, 'cur'), (err: unknown) => err instanceof DataError && err.code === 'INVALID_KEYS' && /1 row\(s\) with an empty or whitespace-only user_id: " \\t" x1/.test(err.message));
    // a full build with the blank still there adds no check (the savepoint takes the refused ALTER back)
    await build(a.warehouse.pool, 'public', '2024-06-28T00:00:00Z', { fullRefresh: true });
    assert.equal(await check(), 0);
    assert.equal(await enforced(a), 'text');
    // the payment corrected: the next build checks the history again and the proof is back
    await pool.query(`DELETE FROM public.fact_payments WHERE payment_id = 'blank-1'`);
    await build(a.warehouse.pool, 'public', '2024-06-29T00:00:00Z', { fullRefresh: true });
    assert.equal(await check(), 1);
    assert.equal(await enforced(a), 'text, never blank');
    const users = (await pool.query('SELECT count(*)::int AS n FROM public.rfm_current_segments')).rows[0].n;
    assert.equal((await planMapping(a, 'cur')).counts.source, users, 'planned over the whole model, nothing refused');
  });
});
