import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadProject } from '../src/config/load.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { syncEngine } from '../src/daemon/sync-adapter.ts';
import type { Warehouse } from '../src/db/warehouse.ts';
import { registry } from '../src/metrics.ts';
import { committedRecords } from './helpers/files.ts';
import { testLog, useFreshWarehouse } from './helpers/pg.ts';
import { createProject, type TestProject } from './helpers/project.ts';
import { waitFor } from './helpers/wait.ts';

/** The daemon with the real models build: a successful build triggers the mappings that wait for it. */

let warehouse: Warehouse;
let project: TestProject;

useFreshWarehouse('postgres', async (w, { url }) => {
  warehouse = w;
  project = await createProject({ url });
  await project.write('config/segsync.yaml', `warehouse: {url: '${url}'}\nmodels: {schedule: "0 2 * * *"}\nconnections:\n  files: {type: file, directory: '${project.outDir}'}\ndaemon: {port: 0, host: 127.0.0.1}\n`);
  await project.write('mappings/after-build.yaml', `name: after-build
source: {model: rfm_current_segments, key: user_id}
destination: {connection: files, object: customers, match_key: customer_id}
fields:
  - {to: rfm_segment, from: rfm_segment}
after: [models]
max_staleness: 1h
`);
  await warehouse.pool.query('CREATE TABLE fact_payments (user_id text, payment_id text, payment_date timestamptz, payment_amount numeric)');
  // 5 customers, 1 to 5 payments each over the last months.
  await warehouse.pool.query(`INSERT INTO fact_payments
    SELECT 'c' || u, 'p' || u || '-' || k, now() - (k * 17 + u) * interval '1 day', 10 * u + k
      FROM generate_series(1, 5) u, generate_series(1, 5) k WHERE k <= u`);
});
after(() => project.cleanup());

async function runsOf(): Promise<Array<{ trigger: string; status: string; snapshot_at: Date }>> {
  return (await warehouse.pool.query(`SELECT actor_type || ':' || actor_id AS trigger, status, snapshot_at FROM segsync.runs WHERE mapping = 'after-build' ORDER BY id`)).rows;
}

async function withDaemon(fn: (d: Daemon) => Promise<void>): Promise<void> {
  const config = await loadProject({ root: project.dir });
  const daemon = new Daemon({ app: { config, warehouse, log: testLog }, engine: syncEngine, loadConfig: () => loadProject({ root: project.dir }) });
  await daemon.start();
  try {
    await fn(daemon);
  } finally {
    await daemon.stop();
  }
}

const until = (what: string, cond: () => Promise<boolean>) => waitFor(what, cond, 30_000, 50);

test('at start with no model yet, the catch-up builds it once and the mapping waiting for it runs on the fresh snapshot', async () => {
  await withDaemon(async (daemon) => {
    await until('the dependent mapping ran', async () => (await runsOf()).length === 1 && !daemon.context.scheduler.busy('after-build'));
  });
  const runs = await runsOf();
  assert.deepEqual(runs.map((r) => [r.trigger, r.status]), [['daemon:after-models', 'succeeded']]);
  assert.ok(Date.now() - runs[0]!.snapshot_at.getTime() < 60_000, 'it delivered the snapshot just built');
  assert.equal((await committedRecords(path.join(project.outDir, 'after-build'))).length, 5);
  const metrics = await registry.metrics();
  assert.match(metrics, /segsync_stage_duration_seconds_count\{stage="build",mapping="models"\} 1\n/);
  assert.match(metrics, /segsync_model_freshness_lag_seconds\{model="rfm_current_segments"\} \d/);
});

test('a model built since its last scheduled time is not rebuilt at start; each successful build runs the dependents again', async () => {
  await withDaemon(async (daemon) => {
    await sleep(500);
    assert.equal((await runsOf()).length, 1, 'no catch-up build, so no dependent run');
    await daemon.context.scheduler.fire('models', 'manual');
    await until('the dependent mapping ran again', async () => (await runsOf()).length === 2 && !daemon.context.scheduler.busy('after-build'));
  });
  const runs = await runsOf();
  assert.deepEqual(runs.map((r) => [r.trigger, r.status]), [['daemon:after-models', 'succeeded'], ['daemon:after-models', 'succeeded']]);
  assert.match(await registry.metrics(), /segsync_stage_duration_seconds_count\{stage="build",mapping="models"\} 2\n/);
  assert.equal((await committedRecords(path.join(project.outDir, 'after-build'))).length, 5, 'the same segments were not sent again');
});

test('a build already running elsewhere (its lock held) makes this replica skip the tick: no failure, no dependent run', async () => {
  const other = await warehouse.pool.connect();
  try {
    await other.query('BEGIN');
    await other.query(`SELECT pg_advisory_xact_lock(hashtext('segsync:models:public'))`);
    await withDaemon(async (daemon) => {
      const before = (await runsOf()).length;
      await daemon.context.scheduler.fire('models', 'manual');
      await until('the tick was skipped', async () => (daemon.context.status.get('models') as { state?: string } | undefined)?.state === 'skipped');
      assert.deepEqual(daemon.context.status.get('models'), { ...daemon.context.status.get('models'), state: 'skipped', reason: 'running on another replica' });
      assert.match(await registry.metrics(), /segsync_skipped_ticks_total\{job="models",reason="replica"\} [1-9]/);
      const failed = await warehouse.pool.query(`SELECT count(*)::int AS n FROM segsync.events WHERE kind = 'build_failed'`);
      assert.equal(failed.rows[0].n, 0, 'a skipped build is not a failed one');
      await sleep(300);
      assert.equal((await runsOf()).length, before, 'no dependent run without a build');
    });
  } finally {
    await other.query('ROLLBACK');
    other.release();
  }
});
