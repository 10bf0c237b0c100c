import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Warehouse } from '../src/db/warehouse.ts';
import { DataError } from '../src/errors.ts';
import { migrate } from '../src/state/migrate.ts';
import { keyOrderCollation } from '../src/state/plan-items.ts';
import { planMapping, runMapping } from '../src/sync/run.ts';
import { systemActor } from '../src/state/actor.ts';
import { createRun } from '../src/state/create-run.ts';
import { recordBatch, type FinalOutcome, type RecordBatchOptions } from '../src/state/record-batch.ts';
import { transition } from '../src/state/transition.ts';
import { enterPlanSnapshot, snapshotRelation } from '../src/sync/plan.ts';
import type { SourceQuery } from '../src/sync/source.ts';
import { freshWarehouse, useFreshWarehouse } from './helpers/pg.ts';
import { FILE_MAPPING, seedSegments, withMappingProject } from './helpers/project.ts';

/** The ledger's write path against real PostgreSQL: recordBatch on hand-made intents, then the CLI on a real run. */
describe('ledger: receipts and delivered state per batch', () => {
  let warehouse: Warehouse;
  useFreshWarehouse('postgres', async (w) => {
    warehouse = w;
    await migrate(warehouse.pool, 'segsync');
  });

  /** A run row and its planned items, as planInto writes them. */
  async function plannedRun(items: Array<{ key: string; op?: FinalOutcome['op']; stateExists: boolean }>): Promise<number> {
    const pool = warehouse.pool;
    const runId = await createRun(pool, 'segsync', { mapping: 'm', actor: systemActor, configHash: 'h', destination: 'files', status: 'planning' });
    await transition(pool, 'segsync', { run: runId }, 'planned', systemActor, null);
    await transition(pool, 'segsync', { run: runId }, 'delivering', systemActor, null);
    await pool.query(
      `INSERT INTO segsync.run_items (run_id, key, op, after, payload_hash, state_exists)
       SELECT $1, k, op, jsonb_build_object('seg', 'S-' || k), 'hash-' || k, e FROM unnest($2::text[], $3::text[], $4::boolean[]) AS u(k, op, e)`,
      [runId, items.map((i) => i.key), items.map((i) => i.op ?? 'create'), items.map((i) => i.stateExists)]);
    return runId;
  }

  /** A batch as delivery records it: marked sending first, then its outcomes with the batch answered. */
  async function record(o: Omit<RecordBatchOptions, 'batch' | 'actor'>): Promise<void> {
    const batch = { firstKey: o.outcomes[0]!.key, lastKey: o.outcomes[o.outcomes.length - 1]!.key, size: o.outcomes.length };
    await transition(warehouse.pool, 'segsync', { items: { run: o.runId, mapping: o.mapping, ...batch } }, 'sending', systemActor, null);
    await recordBatch(warehouse.pool, { ...o, batch, actor: systemActor });
  }

  const outcome = (key: string, status: FinalOutcome['status'], stateExists: boolean, destinationId: string | null = 'file-1'): FinalOutcome =>
    ({ key, status, op: 'create', payloadHash: `hash-${key}`, stateExists, attempt: 1, sentAt: new Date(), destinationId,
      ...(status === 'failed' ? { errorCode: 'REJECTED', errorMessage: 'no' } : {}) });

  const state = async (keys: string[]) => (await warehouse.pool.query(
    `SELECT key, payload ->> 'seg' AS seg, payload_hash, destination_id, last_run_id::int AS run, fail_count FROM segsync.delivered WHERE mapping = 'm' AND key = ANY($1) ORDER BY key`, [keys])).rows;

  test('a batch with delivered, failed and deferred records moves only the delivered ones; deferred get no receipt', async () => {
    const keys = ['a1', 'a2', 'a3', 'a4', 'a5'];
    const runId = await plannedRun(keys.map((key) => ({ key, stateExists: false })));
    // The batch is the whole key range a1..a5; a2 failed and a4 was deferred in the middle of it.
    await record({ schema: 'segsync', mapping: 'm', runId, deadAfter: 3, copy: true,
      outcomes: [outcome('a1', 'delivered', false), outcome('a2', 'failed', false), outcome('a3', 'delivered', false), outcome('a4', 'deferred', false), outcome('a5', 'delivered', false)] });
    const rows = await state(keys);
    assert.deepEqual(rows.map((r) => [r.key, r.seg, r.fail_count]), [['a1', 'S-a1', 0], ['a2', null, 1], ['a3', 'S-a3', 0], ['a5', 'S-a5', 0]]);
    assert.ok(rows.filter((r) => r.key !== 'a2').every((r) => r.run === runId && r.destination_id === 'file-1' && r.payload_hash === `hash-${r.key}`));
    const receipts = (await warehouse.pool.query(`SELECT key, status FROM segsync.receipts WHERE run_id = $1 ORDER BY key`, [runId])).rows;
    assert.deepEqual(receipts.map((r) => `${r.key}:${r.status}`), ['a1:delivered', 'a2:failed', 'a3:delivered', 'a5:delivered']);
  });

  test('per-record destination ids are kept; a second receipt for one record in one run is refused', async () => {
    const runId = await plannedRun([{ key: 'b1', stateExists: false }, { key: 'b2', stateExists: false }]);
    await record({ schema: 'segsync', mapping: 'm', runId, deadAfter: 3, copy: false,
      outcomes: [outcome('b1', 'delivered', false, 'crm-001'), outcome('b2', 'delivered', false, 'crm-002')] });
    assert.deepEqual((await state(['b1', 'b2'])).map((r) => r.destination_id), ['crm-001', 'crm-002']);
    await assert.rejects(
      record({ schema: 'segsync', mapping: 'm', runId, deadAfter: 3, copy: true, outcomes: [outcome('b1', 'delivered', true)] }),
      (err: { code?: string; constraint?: string }) => err.code === '23505' && /^receipts(_p\d{6})?_pkey$/.test(err.constraint ?? ''));
    const n = (await warehouse.pool.query(`SELECT count(*)::int AS n FROM segsync.receipts WHERE run_id = $1`, [runId])).rows[0].n;
    assert.equal(n, 2, 'the refused batch left nothing behind');
  });

  test('a batch answered as one writes its receipts from the planned items: the same rows the per-record COPY writes', async () => {
    const keys = ['s1', 's2', 's3'];
    const receipts = async (runId: number) => (await warehouse.pool.query(
      `SELECT key, op, status, payload_hash, destination_id, created, error_code, error_message, attempt, request_id, sent_at, period, mapping
       FROM segsync.receipts WHERE run_id = $1 ORDER BY key`, [runId])).rows;
    const sentAt = new Date('2026-12-04T10:00:00.000Z');
    // s2 failed twice in earlier runs: its attempt counts them (the send is the second of this run).
    const shared = (key: string, status: FinalOutcome['status'], prior: number, extra: Partial<FinalOutcome> = {}): FinalOutcome =>
      ({ key, status, op: 'create', payloadHash: `hash-${key}`, stateExists: false, attempt: 2 + prior, priorFailures: prior, sentAt, destinationId: 'batch-7.ndjson', requestId: 'batch-7', ...extra });
    const runs: number[] = [];
    for (const withPrior of [true, false]) {
      const runId = await plannedRun(keys.map((key) => ({ key, stateExists: false })));
      await warehouse.pool.query(`UPDATE segsync.run_items SET prior_failures = 2 WHERE run_id = $1 AND key = 's2'`, [runId]);
      // Without priorFailures the outcomes go through the per-record COPY, as before.
      const outcomes = keys.map((k) => shared(k, 'delivered', k === 's2' ? 2 : 0));
      await record({ schema: 'segsync', mapping: 'm', runId, deadAfter: 3, copy: true,
        outcomes: withPrior ? outcomes : outcomes.map(({ priorFailures: _, ...o }) => o) });
      runs.push(runId);
    }
    const [a, b] = [await receipts(runs[0]!), await receipts(runs[1]!)];
    assert.deepEqual(a, b);
    assert.deepEqual(a.map((r) => [r.key, r.status, r.attempt, r.payload_hash, r.destination_id, r.request_id, r.sent_at.toISOString()]), [
      ['s1', 'delivered', 2, 'hash-s1', 'batch-7.ndjson', 'batch-7', sentAt.toISOString()],
      ['s2', 'delivered', 4, 'hash-s2', 'batch-7.ndjson', 'batch-7', sentAt.toISOString()],
      ['s3', 'delivered', 2, 'hash-s3', 'batch-7.ndjson', 'batch-7', sentAt.toISOString()]]);

    // A whole-batch failure is shared too, its message masked once for all (docs/security.md).
    const failed = await plannedRun(keys.map((key) => ({ key, stateExists: false })));
    const message = 'rejected: owner jane.doe@example.com is not allowed';
    await record({ schema: 'segsync', mapping: 'm', runId: failed, deadAfter: 3, copy: true,
      outcomes: keys.map((k) => shared(k, 'failed', 0, { errorCode: 'HTTP_403', errorMessage: message, destinationId: null, requestId: undefined })) });
    const f = await receipts(failed);
    assert.deepEqual(f.map((r) => [r.key, r.status, r.error_code, r.destination_id, r.request_id]), keys.map((k) => [k, 'failed', 'HTTP_403', null, null]));
    assert.ok(f.every((r) => r.error_message === f[0].error_message && !r.error_message.includes('jane.doe') && r.error_message.startsWith('rejected: owner ')), f[0].error_message);

    // The receipts are the batch's key range of the planned items: a range holding an item the outcomes do not
    // name is refused whole (nothing of the batch is written), never given a receipt it did not get.
    const gap = await plannedRun(keys.map((key) => ({ key, stateExists: false })));
    await assert.rejects(
      record({ schema: 'segsync', mapping: 'm', runId: gap, deadAfter: 3, copy: true, outcomes: [shared('s1', 'delivered', 0), shared('s3', 'delivered', 0)] }),
      /the key range of run \d+'s batch matched 3 planned items, expected 2/);
    assert.deepEqual(await receipts(gap), []);
    assert.ok((await state(keys)).every((r) => r.run !== gap), 'the refused batch moved no state');
  });

  test('the intent is sorted under "C" only where that is its key index\'s own order', async () => {
    const pool = warehouse.pool;
    const orderOf = (schema: string) => keyOrderCollation(pool, schema);
    const mine = await orderOf('segsync');
    assert.ok(mine === '' || mine === ' COLLATE "C"', String(mine));
    // Where "C" is chosen for the database's own collation, the two orders are one, for any text.
    const keys = ['b', 'B', 'a', 'A', '_x', '-x', 'x-', 'é', 'e', 'f', 'z', 'ä', '10', '9', '1 0', '\u{1F600}', '\u00ff', '\u0100', 'ab', 'a b', 'a-b', 'ß', 'ss'];
    const { rows } = await pool.query(
      `SELECT array_agg(k ORDER BY k) AS own, array_agg(k ORDER BY k COLLATE "C") AS c FROM unnest($1::text[]) AS k`, [keys]);
    const { rows: db } = await pool.query(`SELECT datcollate FROM pg_database WHERE datname = current_database()`);
    if (/^C\.(UTF-?8|utf-?8)$/.test(db[0].datcollate)) assert.equal(mine, ' COLLATE "C"');
    if (mine) assert.deepEqual(rows[0].own, rows[0].c, `the database's collation (${db[0].datcollate}) orders text as "C" does`);
    // A key column with a collation of its own decides: "C" and "POSIX" are compared as bytes already, an
    // ICU collation keeps its order (sorting under "C" would scatter the delivery's key ranges over the table),
    // libc's C.utf8 orders as "C" does and is sorted under it.
    for (const [collation, expected] of [['C', ''], ['POSIX', ''], ['en-x-icu', ''], ['C.utf8', ' COLLATE "C"']] as const) {
      const schema = `order_${collation.replace(/\W/g, '_').toLowerCase()}`;
      await pool.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.run_items (run_id bigint, key text COLLATE "${collation}")`);
      try {
        assert.equal(await orderOf(schema), expected, collation);
      } finally {
        await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      }
    }
  });

  test('a state row that appeared after planning (a run that outlived its lock): the batch is written with upserts, and a newer run\'s state wins', async () => {
    const runId = await plannedRun(['c1', 'c2', 'c3'].map((key) => ({ key, stateExists: false })));
    // c2 got a state row from an older run, c3 from a newer one, both after this run was planned.
    await warehouse.pool.query(
      `INSERT INTO segsync.delivered (mapping, key, payload, payload_hash, last_run_id) VALUES ('m', 'c2', '{"seg":"old"}', 'old', $1), ('m', 'c3', '{"seg":"newer"}', 'newer', $2)`,
      [runId - 1, runId + 1000]);
    await record({ schema: 'segsync', mapping: 'm', runId, deadAfter: 3, copy: true,
      outcomes: ['c1', 'c2', 'c3'].map((k) => outcome(k, 'delivered', false)) });
    assert.deepEqual((await state(['c1', 'c2', 'c3'])).map((r) => [r.key, r.seg]), [['c1', 'S-c1'], ['c2', 'S-c2'], ['c3', 'newer']]);
    const receipts = (await warehouse.pool.query(`SELECT count(*)::int AS n FROM segsync.receipts WHERE run_id = $1`, [runId])).rows[0].n;
    assert.equal(receipts, 3);
  });
});

test('the key check is skipped only when the database enforces the key: a unique index that allows NULLs still gets the check', async () => {
  await withMappingProject(FILE_MAPPING(), async (project, db) => {
    await project.app(async (app) => {
      const pool = app.warehouse.pool;
      await seedSegments(pool, 4);
      await pool.query(`CREATE UNIQUE INDEX segments_user ON segments (user_id)`);
      await pool.query(`INSERT INTO segments (user_id, rfm_segment) VALUES (NULL, 'X')`);
      await assert.rejects(runMapping(app, 'seg-to-file'), (err: unknown) => err instanceof DataError && err.code === 'INVALID_KEYS' && /1 row\(s\) with a NULL user_id/.test(err.message));
      // A partial unique index does not cover every row either.
      await pool.query(`DELETE FROM segments WHERE user_id IS NULL`);
      await pool.query(`DROP INDEX segments_user`);
      await pool.query(`CREATE UNIQUE INDEX segments_user ON segments (user_id) WHERE rfm_segment <> 'dup'`);
      await pool.query(`ALTER TABLE segments ALTER COLUMN user_id SET NOT NULL`);
      await pool.query(`INSERT INTO segments (user_id, rfm_segment) VALUES ('u0001', 'dup')`);
      await assert.rejects(runMapping(app, 'seg-to-file'), (err: unknown) => err instanceof DataError && /'u0\*\*\*01' x2/.test(err.message));
      // A primary key rules both out: the run goes ahead.
      await pool.query(`DELETE FROM segments WHERE rfm_segment = 'dup'`);
      await pool.query(`DROP INDEX segments_user`);
      await pool.query(`ALTER TABLE segments ADD PRIMARY KEY (user_id)`);
      const run = await runMapping(app, 'seg-to-file');
      assert.deepEqual([run.status, run.counts.delivered], ['succeeded', 4]);
      // ... but not for an inheritance child's rows, which the parent's key does not cover.
      await pool.query(`CREATE TABLE segments_late () INHERITS (segments)`);
      await pool.query(`INSERT INTO segments_late (user_id, rfm_segment) VALUES ('u0003', 'Late')`);
      await assert.rejects(runMapping(app, 'seg-to-file'), (err: unknown) => err instanceof DataError && /'u0\*\*\*03' x2/.test(err.message));
    });
  });
});

test('segsync receipts: newest run first, and one record\'s history across runs with --key', async () => {
  await withMappingProject(FILE_MAPPING(), async (project, db) => {
    const runs = await project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 6);
      const first = await runMapping(app, 'seg-to-file');
      await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Hibernating' WHERE user_id IN ('u0002', 'u0005')`);
      const second = await runMapping(app, 'seg-to-file');
      return [first.runId, second.runId];
    });
    const env = { SEGSYNC_DATABASE_URL: db.url };
    const byKey = await project.cli(['receipts', '--key', 'u0002', '--format', 'json'], { env });
    assert.equal(byKey.code, 0, byKey.stderr);
    assert.deepEqual(JSON.parse(byKey.stdout).map((r: { run_id: string; op: string }) => [Number(r.run_id), r.op]), [[runs[1], 'update'], [runs[0], 'create']]);
    const latest = await project.cli(['receipts', '--mapping', 'seg-to-file', '--limit', '3', '--format', 'json'], { env });
    assert.deepEqual(JSON.parse(latest.stdout).map((r: { run_id: string; key: string }) => [Number(r.run_id), r.key]), [[runs[1], 'u0005'], [runs[1], 'u0002'], [runs[0], 'u0006']]);
  });
});

test('on PostgreSQL a plan runs in two halves on two connections and merges into one: counts, samples, transitions; a dry run leaves nothing', async () => {
  await withMappingProject(FILE_MAPPING({ on_removed: 'clear' }), async (project, db) => {
    await project.app(async (app) => {
      const pool = app.warehouse.pool;
      await seedSegments(pool, 200);
      assert.equal((await runMapping(app, 'seg-to-file')).counts.delivered, 200);
      await pool.query(`UPDATE segments SET rfm_segment = 'Hibernating' WHERE user_id <= 'u0030'`);
      await pool.query(`DELETE FROM segments WHERE user_id > 'u0180'`);
      await pool.query(`INSERT INTO segments (user_id, rfm_segment) SELECT 'n' || i, 'New Customers' FROM generate_series(1, 10) i`);
      const dry = await planMapping(app, 'seg-to-file');
      // 10 new, 30 moved to Hibernating, 20 removed: spread over both halves, merged as one plan.
      assert.deepEqual([dry.counts.create, dry.counts.update, dry.counts.remove, dry.counts.unchanged, dry.counts.source], [10, 30, 20, 150, 190]);
      assert.deepEqual(dry.detail.samples.map((r) => `${r.op} ${r.key}`), ['create n1', 'create n10', 'create n2', 'remove u0181', 'remove u0182', 'remove u0183', 'update u0001', 'update u0002', 'update u0003']);
      assert.deepEqual(dry.detail.transitions.map((t) => `${t.from} -> ${t.to}: ${t.count}`),
        ['At Risk -> Hibernating: 15', 'Champions -> Hibernating: 15', '(new) -> New Customers: 10', 'At Risk -> (removed): 10', 'Champions -> (removed): 10']);
      assert.equal((await pool.query(`SELECT count(*)::int AS n FROM segsync.run_items`)).rows[0].n, 200, 'the dry run left no intent on either connection');
      // 20 of 200 removed (over 5%) would hold the run, which is allowed through it; the segments that appear
      // from nothing (Hibernating, New Customers) are named by the distribution rule, which warns.
      assert.deepEqual(dry.guardrails.filter((v) => v.verdict === 'hold').map((v) => v.rule), ['removals']);
      assert.match(dry.guardrails.find((v) => v.rule === 'distribution')!.detail, /new segment\(s\): .*Hibernating/);
      const run = await runMapping(app, 'seg-to-file', { allow: ['removals'], allowReason: 'the test removes them on purpose' });
      assert.deepEqual(run.planned, dry.counts);
      const halves = (await pool.query(`SELECT hashtext(key) & 1 AS half, count(*)::int AS n FROM segsync.run_items WHERE run_id = $1 GROUP BY 1 ORDER BY 1`, [run.runId])).rows;
      assert.equal(halves.length, 2, 'both halves planned items');
      assert.equal(halves[0].n + halves[1].n, run.planned.create + run.planned.update + run.planned.remove);
      assert.equal(run.status, 'succeeded');
    });
  });
});

test('a plan in one snapshot waits for a models build that truncates and reloads the model, then sees it whole', async () => {
  const fresh = await freshWarehouse('postgres');
  const pool = fresh.warehouse.pool;
  const [a, b] = [await pool.connect(), await pool.connect()];
  const reload = `TRUNCATE m; INSERT INTO m SELECT 'u' || i, 'S' FROM generate_series(1, 50) i`;
  try {
    await pool.query(`CREATE TABLE m (user_id text PRIMARY KEY, seg text); INSERT INTO m SELECT 'u' || i, 'S' FROM generate_series(1, 50) i`);
    await pool.query(`CREATE MATERIALIZED VIEW mv AS SELECT * FROM m; CREATE VIEW v AS SELECT * FROM m`);
    const source = (name: string): SourceQuery => ({ from: `(SELECT * FROM ${name}) src`, key: 'user_id::text', payload: 'seg', values: 'seg', params: [], at: () => source(name), relation: { name, key: 'user_id' } });
    assert.equal(await snapshotRelation(pool, source('"public"."m"')), '"public"."m"');
    assert.equal(await snapshotRelation(pool, source('"public"."v"')), '"public"."v"');
    assert.equal(await snapshotRelation(pool, source('"public"."mv"')), null, 'LOCK TABLE cannot take a materialized view');
    const sqlSource: SourceQuery = { from: '(SELECT 1) src', key: 'x', payload: 'x', values: 'x', params: [], at: () => sqlSource };
    assert.equal(await snapshotRelation(pool, sqlSource), null, 'an SQL source');

    // The hazard: a REPEATABLE READ snapshot taken before a TRUNCATE commits sees the table empty.
    await a.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await a.query('SELECT 1');
    await b.query(`BEGIN; ${reload}; COMMIT`);
    assert.equal((await a.query('SELECT count(*)::int AS n FROM m')).rows[0].n, 0);
    await a.query('ROLLBACK');

    // The plan's way in: the lock first, so the snapshot is taken after the build commits.
    for (const relation of ['"public"."m"', '"public"."v"']) {
      await b.query(`BEGIN; ${reload}`);
      await a.query('BEGIN');
      const entered = enterPlanSnapshot(a, relation);
      for (let i = 0; ; i++) {
        const waiting = await pool.query(`SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'm' AND NOT l.granted`);
        if (waiting.rowCount) break;
        assert.ok(i < 200, 'the plan waits for the build\'s lock');
        await new Promise((r) => setTimeout(r, 10));
      }
      await b.query('COMMIT');
      await entered;
      assert.equal((await a.query('SELECT count(*)::int AS n FROM m')).rows[0].n, 50, `through ${relation}`);
      await a.query('ROLLBACK');
    }
  } finally {
    a.release();
    b.release();
    await fresh.cleanup();
  }
});

test('a plan never waits for a second connection: with the pool in use it runs whole; a killed plan\'s half-written intent is dropped by the next run', async () => {
  await withMappingProject(FILE_MAPPING({ on_removed: 'clear' }), async (project) => {
    await project.app(async (app) => {
      const pool = app.warehouse.pool;
      await seedSegments(pool, 40);
      // The run takes one connection for its lock and one for its plan: hold all the others (8 in all).
      const held = await Promise.all(Array.from({ length: pool.options.max! - 2 }, () => pool.connect()));
      let run;
      try {
        run = await runMapping(app, 'seg-to-file');
      } finally {
        for (const c of held) c.release();
      }
      assert.deepEqual([run.status, run.planned.create, run.counts.delivered], ['succeeded', 40, 40]);
      // What a kill between the helper's commit and the plan's own leaves: a run without planned_at, with items.
      const { rows } = await pool.query(`INSERT INTO segsync.runs (mapping, actor_type, actor_id, status, config_hash, destination) VALUES ('seg-to-file', 'cli', 'test', 'planning', 'h', 'files') RETURNING id`);
      await pool.query(`INSERT INTO segsync.run_items (run_id, key, op, after, payload_hash, state_exists) SELECT $1, 'u' || i, 'update', '{}', 'x', true FROM generate_series(1, 5) i`, [rows[0].id]);
      const next = await runMapping(app, 'seg-to-file');
      assert.equal(next.counts.delivered, 0);
      const left = await pool.query(`SELECT r.status, count(i.key)::int AS items FROM segsync.runs r LEFT JOIN segsync.run_items i ON i.run_id = r.id WHERE r.id = $1 GROUP BY 1`, [rows[0].id]);
      assert.deepEqual(left.rows[0], { status: 'interrupted', items: 0 });
    });
  });
});
