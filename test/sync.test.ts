import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DataError, LockedError } from '../src/errors.ts';
import { planMapping, runMapping } from '../src/sync/run.ts';
import { committedRecords, latestByKey } from './helpers/files.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, FILE_MAPPING, seedSegments, type TestProject } from './helpers/project.ts';

/** Resolves once a run of the mapping holds its lock and is delivering (its row says running). */
async function untilRunning(pool: import('pg').Pool): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const { rows } = await pool.query(`SELECT 1 FROM segsync.runs WHERE status = 'delivering'`).catch(() => ({ rows: [] }));
    if (rows.length) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('no run reached running within 6 s');
}

async function setup(mapping = FILE_MAPPING()): Promise<{ db: TestDatabase; project: TestProject; dir: string }> {
  const db = await createTestDatabase();
  const project = await createProject({ url: db.url });
  await project.write('mappings/m.yaml', mapping);
  const name = /name: (\S+)/.exec(mapping)![1]!;
  return { db, project, dir: path.join(project.outDir, name) };
}

describe('sync engine on PostgreSQL with the file destination', () => {
  let db: TestDatabase;
  let project: TestProject;
  let dir: string;
  before(async () => ({ db, project, dir } = await setup(FILE_MAPPING({ on_removed: 'clear' }))));
  after(async () => { await project.cleanup(); await db.drop(); });

  test('first run delivers everything, a rerun sends nothing', async () => {
    await project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 25);
      const first = await runMapping(app, 'seg-to-file');
      assert.equal(first.status, 'succeeded');
      assert.deepEqual([first.counts.create, first.counts.update, first.counts.delivered, first.counts.failed], [25, 0, 25, 0]);
      const files = await latestByKey(dir);
      assert.equal(files.size, 25);
      assert.deepEqual(files.get('u0002'), { _op: 'create', customer_id: 'u0002', rfm_segment: 'Champions', recency_score: 2, monetary: 10.5 });
      const second = await runMapping(app, 'seg-to-file');
      assert.equal(second.status, 'succeeded');
      assert.equal(second.counts.create + second.counts.update + second.counts.remove, 0);
      assert.equal(second.counts.unchanged, 25);
      assert.equal((await committedRecords(dir)).length, 25, 'the rerun wrote no records');
    });
  });

  test('only mapped-field changes count; a removed key is cleared', async () => {
    await project.app(async (app) => {
      const pool = app.warehouse.pool;
      await pool.query(`UPDATE segments SET note = 'changed but not mapped'`);
      await pool.query(`UPDATE segments SET rfm_segment = 'Hibernating' WHERE user_id IN ('u0001', 'u0003')`);
      await pool.query(`DELETE FROM segments WHERE user_id = 'u0025'`);
      const plan = await planMapping(app, 'seg-to-file');
      assert.deepEqual([plan.counts.create, plan.counts.update, plan.counts.remove, plan.counts.unchanged], [0, 2, 1, 22]);
      assert.deepEqual(plan.detail.transitions.map((t) => `${t.from} -> ${t.to}: ${t.count}`).sort(), ['At Risk -> (removed): 1', 'At Risk -> Hibernating: 2'].sort());
      const run = await runMapping(app, 'seg-to-file');
      assert.deepEqual([run.counts.update, run.counts.remove, run.counts.delivered], [2, 1, 3]);
      const files = await latestByKey(dir);
      assert.equal(files.get('u0001')?.rfm_segment, 'Hibernating');
      assert.deepEqual(files.get('u0025'), { _op: 'remove', customer_id: 'u0025', rfm_segment: null, recency_score: null, monetary: null });
      const state = await pool.query(`SELECT payload_hash, removed_at FROM segsync.delivered WHERE mapping = 'seg-to-file' AND key = 'u0025'`);
      assert.equal(state.rows[0].payload_hash, null);
      assert.ok(state.rows[0].removed_at);
      const receipts = await pool.query(`SELECT key, op, status FROM segsync.receipts WHERE run_id = $1 ORDER BY key`, [run.runId]);
      assert.deepEqual(receipts.rows, [
        { key: 'u0001', op: 'update', status: 'delivered' },
        { key: 'u0003', op: 'update', status: 'delivered' },
        { key: 'u0025', op: 'remove', status: 'delivered' },
      ]);
    });
  });

  test('reconcile verifies the files and --repair re-plans a record edited downstream', async () => {
    await project.app(async (app) => {
      const { reconcileMapping } = await import('../src/sync/reconcile.ts');
      const clean = await reconcileMapping(app, 'seg-to-file', { all: true });
      assert.deepEqual(clean.counts, { verified: 24, drifted: 0, missing: 0, unverifiable: 0 });
      // Simulate a downstream edit: a later committed file that says something else for u0004.
      const { writeFile } = await import('node:fs/promises');
      await writeFile(path.join(dir, 'run-99999999-000001.ndjson'), JSON.stringify({ _op: 'update', customer_id: 'u0004', rfm_segment: 'Edited', recency_score: 4, monetary: 31.5 }) + '\n');
      await writeFile(path.join(dir, 'run-99999999-000001.ndjson.manifest.json'), JSON.stringify({ file: 'run-99999999-000001.ndjson', format: 'ndjson' }));
      const drift = await reconcileMapping(app, 'seg-to-file', { all: true, repair: true });
      assert.deepEqual(drift.counts, { verified: 23, drifted: 1, missing: 0, unverifiable: 0 });
      assert.deepEqual(drift.examples, [{ key: 'u0004', status: 'drifted', driftedFields: ['rfm_segment'] }]);
      assert.equal(drift.repaired, 1);
      const run = await runMapping(app, 'seg-to-file');
      assert.deepEqual([run.counts.update, run.counts.delivered], [1, 1]);
    });
  });
});

describe('on_removed', () => {
  for (const mode of ['keep', 'delete'] as const) {
    test(`${mode}: a key that left the model is ${mode === 'keep' ? 'left alone' : 'sent as a delete'}`, async () => {
      const { db, project, dir } = await setup(FILE_MAPPING({ on_removed: mode, name: `rm-${mode}` }));
      try {
        await project.app(async (app) => {
          await seedSegments(app.warehouse.pool, 3);
          await runMapping(app, `rm-${mode}`);
          await app.warehouse.pool.query(`DELETE FROM segments WHERE user_id = 'u0002'`);
          const run = await runMapping(app, `rm-${mode}`);
          assert.equal(run.counts.remove, mode === 'keep' ? 0 : 1);
          const last = (await latestByKey(dir)).get('u0002');
          assert.deepEqual(last, mode === 'keep' ? { _op: 'create', customer_id: 'u0002', rfm_segment: 'Champions', recency_score: 2, monetary: 10.5 } : { _op: 'remove', customer_id: 'u0002' });
        });
      } finally {
        await project.cleanup();
        await db.drop();
      }
    });
  }
});

test('duplicate and NULL keys fail the plan with examples and nothing is sent', async () => {
  const { db, project, dir } = await setup();
  try {
    await project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 5);
      await app.warehouse.pool.query(`INSERT INTO segments (user_id, rfm_segment) VALUES ('u0002', 'Champions'), ('u0002', 'X'), (NULL, 'Y')`);
      await assert.rejects(runMapping(app, 'seg-to-file'), (err: unknown) => {
        assert.ok(err instanceof DataError);
        assert.equal(err.code, 'INVALID_KEYS');
        assert.match(err.message, /1 row\(s\) with a NULL user_id/);
        assert.match(err.message, /'u0\*\*\*02' x3/, 'examples are masked');
        assert.doesNotMatch(err.message, /u0002/);
        return true;
      });
      assert.equal((await committedRecords(dir)).length, 0);
      const items = await app.warehouse.pool.query('SELECT count(*)::int AS n FROM segsync.run_items');
      assert.equal(items.rows[0].n, 0, 'the failed plan left no intent behind');
      const runs = await app.warehouse.pool.query('SELECT status, error FROM segsync.runs');
      assert.equal(runs.rows[0].status, 'failed');
    });
  } finally {
    await project.cleanup();
    await db.drop();
  }
});

test('a new mapping on an old model delivers everything (state is per mapping)', async () => {
  const { db, project } = await setup();
  try {
    await project.write('mappings/second.yaml', FILE_MAPPING({ name: 'second-sync' }));
    await project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 10);
      assert.equal((await runMapping(app, 'seg-to-file')).counts.delivered, 10);
      assert.equal((await runMapping(app, 'seg-to-file')).counts.delivered, 0);
      const second = await runMapping(app, 'second-sync');
      assert.deepEqual([second.counts.create, second.counts.delivered], [10, 10]);
    });
  } finally {
    await project.cleanup();
    await db.drop();
  }
});

test('two concurrent runs of one mapping: the second is refused with a clear message', async () => {
  const { db, project } = await setup(FILE_MAPPING({ throttle: '400', extra: 'batch_size: 5\nconcurrency: 1' }));
  try {
    await project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 30);
      const first = runMapping(app, 'seg-to-file');
      await untilRunning(app.warehouse.pool);
      await assert.rejects(runMapping(app, 'seg-to-file'), (err: unknown) => err instanceof LockedError && /already running/.test(err.message));
      assert.equal((await first).counts.delivered, 30);
    });
    // Across processes: a CLI run while this process holds the lock.
    await project.app(async (app) => {
      await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Need Attention'`);
      // Every record changes segment: over the changed guardrail, allowed for this run.
      const running = runMapping(app, 'seg-to-file', { allow: ['changed'], allowReason: 'test' });
      await untilRunning(app.warehouse.pool);
      const other = await project.cli(['run', 'seg-to-file']);
      assert.equal(other.code, 1);
      assert.match(other.stderr, /mapping 'seg-to-file' is already running in another process or replica/);
      assert.equal((await running).counts.delivered, 30);
    });
  } finally {
    await project.cleanup();
    await db.drop();
  }
});
