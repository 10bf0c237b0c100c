import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { planMapping, runMapping } from '../src/sync/run.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, FILE_MAPPING, seedSegments, type TestProject } from './helpers/project.ts';

// A plan tells unchanged records by a hash of their mapped values, kept with the delivered state, and builds a
// payload only for the others. These check that the shortcut never hides a change and that state rows without
// a values hash (an older ledger) are compared by payload, then given one.
let db: TestDatabase;
let project: TestProject;
before(async () => {
  db = await createTestDatabase();
  project = await createProject({ url: db.url });
  await project.write('mappings/m.yaml', FILE_MAPPING());
});
after(async () => { await project.cleanup(); await db.drop(); });

const stateHashes = async (pool: import('pg').Pool) => (await pool.query<{ with: number; without: number }>(
  `SELECT count(*) FILTER (WHERE row_hash IS NOT NULL)::int AS with, count(*) FILTER (WHERE row_hash IS NULL)::int AS without FROM segsync.delivered WHERE mapping = 'seg-to-file'`)).rows[0]!;

test('a delivered record keeps its values hash; an unchanged rerun plans nothing; a changed value is planned', async () => {
  await project.app(async (a) => {
    const pool = a.warehouse.pool;
    await seedSegments(pool, 20);
    assert.equal((await runMapping(a, 'seg-to-file')).counts.delivered, 20);
    assert.deepEqual(await stateHashes(pool), { with: 20, without: 0 });
    assert.equal((await planMapping(a, 'seg-to-file')).counts.unchanged, 20);
    await pool.query(`UPDATE segments SET monetary = monetary + 0.01 WHERE user_id IN ('u0003', 'u0007')`);
    // a column that is not mapped changes nothing
    await pool.query(`UPDATE segments SET note = 'changed'`);
    const p = await planMapping(a, 'seg-to-file');
    assert.deepEqual([p.counts.update, p.counts.unchanged], [2, 18]);
  });
});

test('state rows without a values hash (an older ledger) are compared by payload, and the next run records their hash', async () => {
  await project.app(async (a) => {
    const pool = a.warehouse.pool;
    await runMapping(a, 'seg-to-file');
    await pool.query(`UPDATE segsync.delivered SET row_hash = NULL WHERE mapping = 'seg-to-file'`);
    await pool.query(`UPDATE segments SET rfm_segment = 'Hibernating' WHERE user_id = 'u0001'`);
    const r = await runMapping(a, 'seg-to-file');
    assert.deepEqual([r.counts.update, r.counts.unchanged], [1, 19]);
    assert.deepEqual(await stateHashes(pool), { with: 20, without: 0 });
    assert.equal((await planMapping(a, 'seg-to-file')).counts.unchanged, 20);
  });
});

test('the same values under another type (an integer column turned text) are a change: the payload differs', async () => {
  await project.app(async (a) => {
    const pool = a.warehouse.pool;
    await pool.query('ALTER TABLE segments ALTER COLUMN recency_score TYPE text');
    const r = await runMapping(a, 'seg-to-file');
    // 1 became "1" in every payload: every record is sent again, and the rerun after it plans nothing
    assert.equal(r.counts.update, 20);
    assert.equal((await planMapping(a, 'seg-to-file')).counts.unchanged, 20);
  });
});

test('a repaired record (reconcile --repair) is planned again although its values did not change', async () => {
  await project.app(async (a) => {
    const pool = a.warehouse.pool;
    await pool.query(`UPDATE segsync.delivered SET payload_hash = 'repair:' || payload_hash WHERE mapping = 'seg-to-file' AND key = 'u0005'`);
    const p = await planMapping(a, 'seg-to-file');
    assert.deepEqual([p.counts.update, p.counts.unchanged], [1, 19]);
  });
});

test('a SQL source is read once per plan: a source whose rows differ on every read still gives one consistent plan', async () => {
  // Each read of this source has a different number of rows (1 to 1,000): read once, the plan's source count,
  // its creates and the guardrails' population agree; read more than once, they would differ (p > 0.999).
  await project.write('mappings/r.yaml', `name: random-src
source:
  sql: SELECT 'r' || g AS user_id, 'Champions' AS rfm_segment FROM generate_series(1, 1 + (random() * 999)::int) g
  key: user_id
destination: { connection: files, object: customers, match_key: customer_id }
fields:
  - { to: rfm_segment, from: rfm_segment }
`);
  await project.app(async (a) => {
    for (let i = 0; i < 3; i++) {
      const p = await planMapping(a, 'random-src');
      assert.equal(p.counts.create, p.counts.source);
      const r = await runMapping(a, 'random-src');
      assert.equal(r.counts.create, r.planned.source);
      const figures = (await a.warehouse.pool.query(`SELECT guardrails -> 'figures' ->> 'population' AS pop FROM segsync.runs WHERE id = $1`, [r.runId])).rows[0];
      assert.equal(Number(figures.pop), r.planned.source);
      await a.warehouse.pool.query(`DELETE FROM segsync.delivered WHERE mapping = 'random-src'`);
    }
  });
});
