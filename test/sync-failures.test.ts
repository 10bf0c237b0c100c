import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runMapping } from '../src/sync/run.ts';
import { latestByKey } from './helpers/files.ts';
import { memoryStore } from './helpers/memory-destination.ts';
import { createTestDatabase } from './helpers/pg.ts';
import { CLI, createProject, FILE_MAPPING, seedSegments } from './helpers/project.ts';
import { waitFor } from './helpers/wait.ts';
import { maskText } from '../src/pii/mask.ts';

const MEMORY_MAPPING = (store: string, extra = '') => `name: seg-to-memory
source: { model: segments, key: user_id }
destination: { connection: mem, object: x, match_key: id }
fields:
  - { to: rfm_segment, from: rfm_segment }
dead_after: 2
${extra}`;

async function memoryProject(store: string, extra = '') {
  const db = await createTestDatabase();
  const project = await createProject({ settings: `warehouse:\n  url: ${db.url}\nconnections:\n  mem:\n    type: memory\n    store: ${store}\n` });
  await project.write('mappings/m.yaml', MEMORY_MAPPING(store, extra));
  return { db, project, async cleanup() { await project.cleanup(); await db.drop(); } };
}

test('a destination that dies after accepting a batch: the batch is retried and the state converges', async () => {
  const env = await memoryProject('dies');
  const store = memoryStore('dies');
  try {
    await env.project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 12);
      store.dieAfterAccepting = 2;
      const run = await runMapping(app, 'seg-to-memory');
      assert.equal(run.status, 'succeeded');
      assert.equal(run.counts.delivered, 12);
      assert.equal(store.records.size, 12);
      assert.equal(store.calls, 3 + 2, 'three batches of five, two of them sent twice');
      const rerun = await runMapping(app, 'seg-to-memory');
      assert.equal(rerun.counts.delivered, 0);
    });
  } finally {
    await env.cleanup();
  }
});

test('a record that fails dead_after runs in a row is dead until retry --dead; the others go on', async () => {
  const env = await memoryProject('rejects');
  const store = memoryStore('rejects');
  try {
    await env.project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 6);
      store.rejectKeys.add('u0003');
      const r1 = await runMapping(app, 'seg-to-memory');
      assert.equal(r1.status, 'partial');
      assert.deepEqual([r1.counts.delivered, r1.counts.failed], [5, 1]);
      const r2 = await runMapping(app, 'seg-to-memory');
      assert.deepEqual([r2.counts.create, r2.counts.failed], [1, 1], 'a failed record is planned again');
      const r3 = await runMapping(app, 'seg-to-memory');
      assert.deepEqual([r3.counts.create, r3.counts.dead, r3.status], [0, 1, 'succeeded'], 'dead after two failing runs: not sent again');
      const dead = await app.warehouse.pool.query(`SELECT fail_count, last_error_code, dead_at IS NOT NULL AS dead FROM segsync.delivered WHERE key = 'u0003'`);
      assert.deepEqual(dead.rows[0], { fail_count: 2, last_error_code: 'INVALID_VALUE', dead: true });
      const receipts = await app.warehouse.pool.query(`SELECT status, error_code, error_message FROM segsync.receipts WHERE key = 'u0003' ORDER BY id`);
      assert.deepEqual(receipts.rows.map((r) => r.status), ['failed', 'failed']);
      assert.equal(receipts.rows[0].error_message, 'value rejected for u0003');
    });
    store.rejectKeys.clear();
    const retried = await env.project.cli(['retry', 'seg-to-memory', '--dead'], { env: { NODE_OPTIONS: `--import=${path.resolve('test/helpers/memory-destination.ts')}` } });
    // The CLI is another process: its memory destination starts empty, so the retried record is all it holds.
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, /1 dead record\(s\) re-queued/);
    assert.match(retried.stdout, /1 delivered, 0 failed/);
    await env.project.app(async (app) => {
      const revived = await app.warehouse.pool.query(`SELECT fail_count, dead_at IS NULL AS alive, payload_hash IS NOT NULL AS confirmed FROM segsync.delivered WHERE key = 'u0003'`);
      assert.deepEqual(revived.rows[0], { fail_count: 0, alive: true, confirmed: true }, 'the ledger holds u0003 as delivered, no longer dead');
    });
  } finally {
    await env.cleanup();
  }
});

test('kill -9 in the middle of a run loses nothing: the state is never ahead of the files and the next run converges', async () => {
  const db = await createTestDatabase();
  const project = await createProject({ url: db.url });
  await project.write('mappings/m.yaml', FILE_MAPPING({ throttle: '150', extra: 'batch_size: 4\nconcurrency: 1' }));
  const dir = path.join(project.outDir, 'seg-to-file');
  try {
    // 100 records in batches of 4, 150 ms apart: ~4 s of delivery, so the kill lands mid-run even on a busy machine.
    await project.app(async (app) => seedSegments(app.warehouse.pool, 100));
    const child = spawn(process.execPath, [CLI, 'run', 'seg-to-file'], { cwd: project.dir, env: { ...process.env, SEGSYNC_DATABASE_URL: '', SEGSYNC_LOG_LEVEL: 'error' }, stdio: 'ignore' });
    await waitFor('three batch files', async () => (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.manifest.json')).length >= 3, 30_000, 20)
      .finally(() => child.kill('SIGKILL'));
    await new Promise((r) => child.once('close', r));
    await project.app(async (app) => {
      const pool = app.warehouse.pool;
      const runs = await pool.query(`SELECT status FROM segsync.runs`);
      assert.deepEqual(runs.rows, [{ status: 'delivering' }], 'the killed run is left as delivering');
      const files = await latestByKey(dir);
      assert.ok(files.size > 0 && files.size < 100, `killed mid-run (${files.size} records in files)`);
      const state = await pool.query<{ key: string; payload: Record<string, unknown> }>(`SELECT key, payload FROM segsync.delivered WHERE payload_hash IS NOT NULL`);
      for (const row of state.rows) {
        const inFile = files.get(row.key);
        assert.ok(inFile, `${row.key} is confirmed in the ledger, so it must be in a committed file`);
        assert.equal(inFile.rfm_segment, row.payload.rfm_segment);
      }
      const next = await runMapping(app, 'seg-to-file');
      assert.equal(next.status, 'succeeded');
      assert.equal(next.counts.create, 100 - state.rowCount!);
      assert.equal((await pool.query(`SELECT status FROM segsync.runs ORDER BY id`)).rows[0].status, 'interrupted');
      const final = await latestByKey(dir);
      assert.equal(final.size, 100);
      const source = await pool.query<{ user_id: string; rfm_segment: string }>('SELECT user_id, rfm_segment FROM segments');
      for (const s of source.rows) assert.equal(final.get(s.user_id)?.rfm_segment, s.rfm_segment);
    });
  } finally {
    await project.cleanup();
    await db.drop();
  }
});

test('validate reports every configuration problem at once with file:line:column', async () => {
  const project = await createProject();
  try {
    await project.write('mappings/a.yaml', `name: bad-one
source:
  model: segments
destination:
  connection: nowhere
  object: x
  match_key: id
fields:
  - { to: seg, from: rfm_segment }
mode: sometimes
feilds: []
`);
    await project.write('mappings/b.yaml', 'name: broken\nsource: [unclosed\n');
    const r = await project.cli(['validate', '--offline']);
    assert.equal(r.code, 2);
    const err = r.stderr;
    assert.match(err, /mappings\/a\.yaml:3:3 \(source\.key\): missing required key 'key'/);
    assert.match(err, /mappings\/a\.yaml:5:15 \(destination\.connection\): unknown connection 'nowhere'\n\s+hint: connections in config\/segsync\.yaml: files/);
    assert.match(err, /^segsync: 5 configuration problem\(s\)/);
    assert.match(err, /mappings\/a\.yaml:10:7 \(mode\): Invalid option: expected one of "upsert"\|"update"\|"mirror"\n\s+hint: one of upsert, update, mirror/);
    assert.match(err, /mappings\/a\.yaml:11:1: unknown key 'feilds'/);
    assert.match(err, /mappings\/b\.yaml:\d+:\d+: YAML syntax/);
  } finally {
    await project.cleanup();
  }
});

test('receipts keep error messages byte for byte (tabs, newlines, backslashes, quotes) on PostgreSQL and embedded', async () => {
  const message = 'bad value:\t"C:\\segments"\nline two\r\\N is not null';
  for (const kind of ['postgres', 'embedded'] as const) {
    const store = memoryStore(`escape-${kind}`);
    store.rejectKeys.add('u0002');
    store.rejectMessage = message;
    const db = kind === 'postgres' ? await createTestDatabase() : null;
    const project = await createProject({ settings: `warehouse:\n  url: ${db?.url ?? ''}\nconnections:\n  mem:\n    type: memory\n    store: escape-${kind}\n` });
    await project.write('mappings/m.yaml', MEMORY_MAPPING(`escape-${kind}`));
    try {
      await project.app(async (app) => {
        await seedSegments(app.warehouse.pool, 3);
        const run = await runMapping(app, 'seg-to-memory');
        assert.deepEqual([run.counts.delivered, run.counts.failed], [2, 1]);
        const { rows } = await app.warehouse.pool.query(`SELECT key, status, error_message, error_code, destination_id FROM segsync.receipts ORDER BY key`);
        assert.deepEqual(rows, [
          { key: 'u0001', status: 'delivered', error_message: null, error_code: null, destination_id: 'mem-u0001' },
          // A destination's message can quote values: the quoted one is masked (docs/pii.md); tabs, newlines and backslashes stay byte for byte.
          { key: 'u0002', status: 'failed', error_message: maskText(message), error_code: 'INVALID_VALUE', destination_id: null },
          { key: 'u0003', status: 'delivered', error_message: null, error_code: null, destination_id: 'mem-u0003' },
        ], kind);
      });
    } finally {
      await project.cleanup();
      await db?.drop();
    }
  }
});

test('reconcile --all walks every delivered record page by page and finds the ones changed or gone downstream', async () => {
  const env = await memoryProject('pages');
  const store = memoryStore('pages');
  try {
    await env.project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 120);
      assert.equal((await runMapping(app, 'seg-to-memory')).counts.delivered, 120);
      store.records.delete('u0007');
      store.records.set('u0111', { rfm_segment: 'Edited in the CRM' });
      const { reconcileMapping } = await import('../src/sync/reconcile.ts');
      const all = await reconcileMapping(app, 'seg-to-memory', { all: true });
      assert.equal(all.checked, 120);
      assert.deepEqual(store.readBacks, [50, 50, 20], 'three read-back pages of at most 50');
      assert.deepEqual(all.counts, { verified: 118, drifted: 1, missing: 1, unverifiable: 0 });
      const sample = await reconcileMapping(app, 'seg-to-memory', { sample: 30 });
      assert.equal(sample.checked, 30);
      const stored = await app.warehouse.pool.query(`SELECT reconcile_status, count(*)::int AS n FROM segsync.delivered GROUP BY 1 ORDER BY 1`);
      assert.deepEqual(stored.rows, [{ reconcile_status: 'drifted', n: 1 }, { reconcile_status: 'missing', n: 1 }, { reconcile_status: 'verified', n: 118 }]);
    });
  } finally {
    await env.cleanup();
  }
});
