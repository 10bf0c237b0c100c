import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { AsOfMovesBackError, buildModels } from '../src/models/build.ts';
import { UsageError } from '../src/errors.ts';
import { createPayments, insertPayments, randomPayments } from './helpers/payments.ts';
import { createTestDatabase, testLog, type TestDatabase } from './helpers/pg.ts';
import { runCli } from './helpers/cli.ts';

/** An as-of in the future, or one moving back, is refused unless a flag says it is meant. */
describe('models build time traps', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  before(async () => {
    db = await createTestDatabase('segsync_time_traps');
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    await createPayments(pool);
    await insertPayments(pool, randomPayments(5, 40, new Date('2023-01-01T00:00:00Z'), new Date('2023-12-01T00:00:00Z')));
  });
  after(async () => {
    await pool.end();
    await db.drop();
  });

  test('a future as-of is refused (nothing built); with --allow-future-as-of it builds', async () => {
    const future = new Date(Date.now() + 40 * 86_400_000);
    await assert.rejects(buildModels(pool, { schema: 'public', payments: 'fact_payments', asOf: future, log: testLog }), (err: unknown) => err instanceof UsageError && /is in the future/.test(err.message));
    const exists = await pool.query(`SELECT to_regclass('public.rfm_segments_hist') AS t`);
    assert.equal(exists.rows[0].t, null, 'nothing was built');
    const r = await runCli(['models', 'build', '--as-of', '2099-01-01'], { url: db.url });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /as-of 2099-01-01T00:00:00\.000Z is in the future[\s\S]*--allow-future-as-of/);
  });

  test('an as-of before the last build is refused; --allow-earlier-as-of goes back on purpose', async () => {
    const later = await runCli(['models', 'build', '--as-of', '2023-12-01'], { url: db.url });
    assert.equal(later.code, 0, later.stderr);
    await assert.rejects(buildModels(pool, { schema: 'public', payments: 'fact_payments', asOf: new Date('2023-11-01T00:00:00Z'), log: testLog }), (err: unknown) => err instanceof AsOfMovesBackError && err.previous.toISOString() === '2023-12-01T00:00:00.000Z');
    const back = await runCli(['models', 'build', '--as-of', '2023-11-01'], { url: db.url });
    assert.equal(back.code, 2);
    assert.match(back.stderr, /before the last build's as-of 2023-12-01T00:00:00\.000Z[\s\S]*--allow-earlier-as-of/);
    const state = await pool.query(`SELECT max(snapshot_at) AS m FROM public.rfm_segments_hist`);
    assert.equal(new Date(state.rows[0].m).toISOString(), '2023-12-01T00:00:00.000Z', 'the refused build changed nothing');
    const meant = await runCli(['models', 'build', '--as-of', '2023-11-01', '--allow-earlier-as-of'], { url: db.url });
    assert.equal(meant.code, 0, meant.stderr);
    assert.match(meant.stdout, /as of 2023-11-01T00:00:00\.000Z/);
    const same = await runCli(['models', 'build', '--as-of', '2023-11-01'], { url: db.url });
    assert.equal(same.code, 0, 'the same as-of again is not "back"');
  });
});
