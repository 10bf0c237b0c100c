import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadProject } from '../src/config/load.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { syncEngine } from '../src/daemon/sync-adapter.ts';
import type { SyncEngine } from '../src/daemon/sync-port.ts';
import { recentEvents } from '../src/daemon/events.ts';
import type { Warehouse } from '../src/db/warehouse.ts';
import { registry } from '../src/metrics.ts';
import { committedRecords } from './helpers/files.ts';
import { testLog, useFreshWarehouse } from './helpers/pg.ts';
import { createProject, FILE_MAPPING, seedSegments, type TestProject } from './helpers/project.ts';

/**
 * The daemon in this process with the real engine, real PostgreSQL and the file destination (throttled to
 * make runs slow on purpose): schedules, overlap, the freshness gate, SLA events, reload, HTTP, stop.
 * Spawned daemons (signals, two replicas, crash recovery) are in daemon-process.test.ts.
 */

let warehouse: Warehouse;
let dbUrl: string;
let project: TestProject;

useFreshWarehouse('postgres', async (w, { url }) => {
  warehouse = w;
  dbUrl = url!;
  project = await createProject({ url });
  await project.write('config/segsync.yaml', `warehouse: {url: '${url}'}\nconnections:\n  files: {type: file, directory: '${project.outDir}'}\ndaemon: {port: 0, host: 127.0.0.1, drain_timeout: 10s}\n`);
  await seedSegments(warehouse.pool, 6);
});
after(() => project.cleanup());

/** Each test writes its own mappings; the folder is emptied first so tests do not see each other's. */
async function mappings(files: Record<string, string>): Promise<void> {
  const { readdir, rm } = await import('node:fs/promises');
  for (const f of await readdir(path.join(project.dir, 'mappings'))) await rm(path.join(project.dir, 'mappings', f));
  for (const [name, text] of Object.entries(files)) await project.write(`mappings/${name}.yaml`, text);
}

const mapping = (name: string, extra: string, throttle = '0') => FILE_MAPPING({ name, throttle, extra });

async function startDaemon(engine: SyncEngine = syncEngine, watchdogMs?: number): Promise<Daemon> {
  const config = await loadProject({ root: project.dir });
  const daemon = new Daemon({ app: { config, warehouse, log: testLog }, engine, loadConfig: () => loadProject({ root: project.dir }), ...(watchdogMs ? { watchdogMs } : {}) });
  await daemon.start();
  return daemon;
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want)).reduce((a, v) => a + v.value, 0);
}

async function runsOf(name: string): Promise<Array<{ id: number; status: string; trigger: string; started_at: Date; finished_at: Date | null; error: string | null }>> {
  return (await warehouse.pool.query(`SELECT id::int, status, actor_type || ':' || actor_id AS trigger, started_at, finished_at, error FROM segsync.runs WHERE mapping = $1 ORDER BY id`, [name])).rows;
}

test('a seconds-level schedule fires; ticks during a slow run are skipped and counted, runs never overlap', async () => {
  // 6 records in batches of 2, 900 ms per batch: a run takes ~2.7 s against a schedule of every second.
  await mappings({ slow: mapping('slow', 'schedule: "* * * * * *"\nbatch_size: 2\nconcurrency: 1', '900') });
  const daemon = await startDaemon();
  try {
    await sleep(4500);
  } finally {
    assert.equal(await daemon.stop(), true);
  }
  const runs = await runsOf('slow');
  assert.ok(runs.length >= 1, 'the schedule fired');
  assert.equal(runs[0]?.status, 'succeeded');
  assert.equal(runs[0]?.trigger, 'daemon:schedule');
  for (let i = 1; i < runs.length; i++) assert.ok(runs[i]!.started_at >= runs[i - 1]!.finished_at!, 'a run starts only after the previous one finished');
  assert.ok(await metric('segsync_skipped_ticks_total', { job: 'slow', reason: 'overlap' }) >= 2, 'skipped ticks are counted');
  assert.equal((await committedRecords(path.join(project.outDir, 'slow'))).length, 6);
});

test('a stale model blocks a dependent mapping with a blocked run, a status and an event; fresh data unblocks it', async () => {
  // seedSegments stamps snapshot_at 2024-01-01: far older than 1h.
  await mappings({ gated: mapping('gated', 'schedule: "* * * * * *"\nafter: [models]\nmax_staleness: 1h') });
  const daemon = await startDaemon();
  try {
    await sleep(1600);
    const blocked = await runsOf('gated');
    assert.ok(blocked.length >= 1);
    assert.ok(blocked.every((r) => r.status === 'blocked'), 'nothing ran');
    assert.match(blocked[0]!.error ?? '', /^blocked: stale model: the model is \d+d\S* old \(as of 2024-01-01T00:00:00.000Z, source: model\), over max_staleness 1h$/);
    const status = daemon.status() as { jobs: Record<string, { state: string; reason: string }> };
    assert.equal(status.jobs.gated?.state, 'blocked');
    assert.equal(status.jobs.gated?.reason, 'blocked: stale model');
    const events = await recentEvents(warehouse.pool, 'segsync', { mapping: 'gated' });
    assert.equal(events[0]?.kind, 'blocked');
    assert.equal(events[0]?.severity, 'error');
    assert.equal(events[0]?.dedupKey, 'blocked:gated:stale model');
    assert.equal(events[0]?.runId, blocked.at(-1)?.id ?? -1);
    assert.ok(await metric('segsync_runs_total', { mapping: 'gated', status: 'blocked' }) >= 1);
    assert.equal((await committedRecords(path.join(project.outDir, 'gated'))).length, 0);

    await warehouse.pool.query('UPDATE segments SET snapshot_at = now()');
    await sleep(2000);
    assert.ok((await runsOf('gated')).some((r) => r.status === 'succeeded'), 'fresh data unblocks it');
  } finally {
    await daemon.stop();
    await warehouse.pool.query(`UPDATE segments SET snapshot_at = '2024-01-01T00:00:00Z'`);
  }
});

test('a run over its SLA records an sla_breach event while it is still running, and a slow stage after it', async () => {
  await mappings({ late: mapping('late', 'sla: {run: 1s, deliver: 1s}\nbatch_size: 3\nconcurrency: 1', '900') });
  const daemon = await startDaemon();
  try {
    const run = daemon.context.scheduler.fire('late', 'manual');
    await sleep(1400);
    const during = await recentEvents(warehouse.pool, 'segsync', { mapping: 'late' });
    assert.equal(during[0]?.kind, 'sla_breach');
    assert.equal(during[0]?.severity, 'warning');
    assert.deepEqual([during[0]?.details.stage, during[0]?.details.still_running], ['run', true]);
    await run;
    const afterRun = await recentEvents(warehouse.pool, 'segsync', { mapping: 'late' });
    const deliver = afterRun.find((e) => e.details.stage === 'deliver');
    assert.ok(deliver, 'the deliver stage breach is recorded after the run');
    assert.equal(deliver.runId, (await runsOf('late'))[0]?.id);
    assert.ok(await metric('segsync_sla_breaches_total', { mapping: 'late', stage: 'run' }) >= 1);
  } finally {
    await daemon.stop();
  }
});

test('reload applies a valid config and rejects an invalid one with every problem, keeping the old schedules', async () => {
  await mappings({ one: mapping('one', 'schedule: "0 3 * * *"'), two: mapping('two', 'schedule: "0 4 * * *"') });
  const daemon = await startDaemon();
  try {
    await mappings({ one: mapping('one', 'schedule: "0 3 * * *"'), three: mapping('three', 'schedule: "* * * * * *"') });
    assert.equal(await daemon.reload(), true);
    assert.equal(daemon.context.scheduler.has('two'), false, 'a removed mapping stops');
    await sleep(1500);
    assert.ok((await runsOf('three')).length >= 1, 'the new mapping runs on its schedule');

    await project.write('mappings/three.yaml', mapping('three', 'schedule: "every second"'));
    await project.write('mappings/four.yaml', mapping('four', 'schedule: "* * * * *"\nmode: sideways'));
    assert.equal(await daemon.reload(), false);
    const rejected = (await recentEvents(warehouse.pool, 'segsync')).find((e) => e.kind === 'config_rejected');
    assert.ok(rejected);
    const problems = rejected.details.problems as Array<{ file: string; path: string; line: number; message: string }>;
    assert.deepEqual(problems.map((p) => p.path).sort(), ['mode', 'schedule']);
    assert.ok(problems.every((p) => p.line > 0 && /mappings\/(three|four)\.yaml$/.test(p.file)));
    assert.match(problems.find((p) => p.path === 'schedule')!.message, /invalid cron expression 'every second'/);
    assert.equal(daemon.context.scheduler.has('four'), false);
    const before = (await runsOf('three')).length;
    await sleep(1500);
    assert.ok((await runsOf('three')).length > before, 'the old schedule of three keeps running');
  } finally {
    await daemon.stop();
  }
});

test('HTTP answers /healthz, /readyz, /metrics and /status', async () => {
  await mappings({ web: mapping('web', 'schedule: "0 3 * * *"') });
  const daemon = await startDaemon();
  try {
    const base = `http://127.0.0.1:${daemon.port}`;
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(((await ready.json()) as { checks: object }).checks, { accepting: { ok: true }, database: { ok: true }, migrations: { ok: true } });
    await daemon.context.scheduler.fire('web', 'manual');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of ['segsync_runs_total', 'segsync_records_total', 'segsync_stage_duration_seconds', 'segsync_rate_budget_used_ratio', 'segsync_last_success_timestamp_seconds', 'segsync_model_freshness_lag_seconds', 'segsync_skipped_ticks_total', 'segsync_process_cpu_seconds_total']) {
      assert.match(metrics, new RegExp(`# TYPE ${name} `), name);
    }
    assert.match(metrics, /segsync_runs_total\{mapping="web",status="succeeded"\} 1/);
    assert.match(metrics, /segsync_records_total\{mapping="web",destination="file",op="create",status="delivered"\} 6/);
    assert.match(metrics, /segsync_stage_duration_seconds_count\{stage="deliver",mapping="web"\} 1/);
    assert.match(metrics, /segsync_last_success_timestamp_seconds\{mapping="web"\} \d{10}/);
    const status = (await (await fetch(`${base}/status`)).json()) as { jobs: Record<string, { schedule: string; next: string; lastRun: { status: string } }> };
    assert.equal(status.jobs.web?.schedule, '0 3 * * *');
    assert.match(status.jobs.web?.next ?? '', /T03:00:00/);
    assert.equal(status.jobs.web?.lastRun.status, 'succeeded');
  } finally {
    await daemon.stop();
  }
  const refused = await fetch(`http://127.0.0.1:${daemon.port}/healthz`).catch((err: unknown) => err);
  assert.ok(refused instanceof Error, 'the HTTP server is closed after stop');
});

test('stop aborts an in-flight run after its current batch, drains, and is idempotent; the next run converges', async () => {
  await mappings({ long: mapping('long', 'batch_size: 1\nconcurrency: 1', '500') });
  const daemon = await startDaemon();
  const run = daemon.context.scheduler.fire('long', 'manual');
  await sleep(1300);
  const first = daemon.stop('test');
  assert.equal(daemon.stop('again'), first);
  assert.equal(await first, true);
  await run;
  assert.equal(daemon.context.scheduler.fire('long', 'manual'), null, 'nothing starts after stop');
  const [stopped] = await runsOf('long');
  assert.equal(stopped?.status, 'interrupted');
  const delivered = (await warehouse.pool.query(`SELECT count(*)::int AS n FROM segsync.delivered WHERE mapping = 'long'`)).rows[0].n as number;
  const files = await committedRecords(path.join(project.outDir, 'long'));
  assert.ok(delivered >= 1 && delivered < 6, `some but not all delivered (${delivered})`);
  assert.equal(files.length, delivered, 'the ledger and the destination agree');

  const again = await startDaemon();
  try {
    await again.context.scheduler.fire('long', 'manual');
  } finally {
    await again.stop();
  }
  const runs = await runsOf('long');
  assert.equal(runs.at(-1)?.status, 'succeeded');
  assert.equal((await committedRecords(path.join(project.outDir, 'long'))).length, 6, 'the next run sent exactly the rest');
});

test('after downtime a mapping that missed its schedule runs once at start; one that did not, or never ran, waits', async () => {
  await mappings({
    missed: mapping('missed', 'schedule: "0 3 * * *"'),
    current: mapping('current', 'schedule: "0 3 * * *"'),
    fresh: mapping('fresh', 'schedule: "0 3 * * *"'),
  });
  const { migrate } = await import('../src/state/migrate.ts');
  await migrate(warehouse.pool, 'segsync');
  // missed: last started 3 days ago, so at least two 03:00 ticks passed. current: started after the last tick.
  await warehouse.pool.query(`INSERT INTO segsync.runs (mapping, actor_type, actor_id, status, config_hash, destination, started_at, finished_at) VALUES
    ('missed', 'daemon', 'schedule', 'succeeded', 'x', 'files', now() - interval '3 days', now() - interval '3 days'),
    ('current', 'daemon', 'schedule', 'succeeded', 'x', 'files', now(), now())`);
  const daemon = await startDaemon();
  try {
    await sleep(1500);
  } finally {
    await daemon.stop();
  }
  const missed = await runsOf('missed');
  assert.deepEqual(missed.map((r) => [r.trigger, r.status]), [['daemon:schedule', 'succeeded'], ['daemon:catch-up', 'succeeded']], 'exactly one catch-up run');
  assert.equal((await runsOf('current')).length, 1, 'no catch-up when the last tick was not missed');
  assert.equal((await runsOf('fresh')).length, 0, 'a mapping that never ran waits for its first tick');
});

test('a failed model build blocks dependent mappings with that reason and records a build_failed event', async () => {
  await project.write('config/segsync.yaml', `warehouse: {url: '${dbUrl}'}\nmodels: {schedule: "0 2 * * *", payments: no_such_payments}\nconnections:\n  files: {type: file, directory: '${project.outDir}'}\ndaemon: {port: 0, host: 127.0.0.1, drain_timeout: 10s, catch_up: false}\n`);
  await warehouse.pool.query('UPDATE segments SET snapshot_at = now()');
  await mappings({ dependent: mapping('dependent', 'after: [models]\nmax_staleness: 1h') });
  const daemon = await startDaemon();
  try {
    await daemon.context.scheduler.fire('models', 'manual');
    await daemon.context.scheduler.fire('dependent', 'manual');
  } finally {
    await daemon.stop();
    await warehouse.pool.query(`UPDATE segments SET snapshot_at = '2024-01-01T00:00:00Z'`);
    await project.write('config/segsync.yaml', `warehouse: {url: '${dbUrl}'}\nconnections:\n  files: {type: file, directory: '${project.outDir}'}\ndaemon: {port: 0, host: 127.0.0.1, drain_timeout: 10s}\n`);
  }
  const events = await recentEvents(warehouse.pool, 'segsync', { limit: 5 });
  const built = events.find((e) => e.kind === 'build_failed');
  assert.ok(built, 'the failed build is an event');
  assert.equal(built.severity, 'error');
  const runs = await runsOf('dependent');
  assert.equal(runs.length, 1);
  assert.equal(runs[0]?.status, 'blocked');
  assert.match(runs[0]?.error ?? '', /^blocked: model build failed: the latest model build failed at /);
  assert.equal((await committedRecords(path.join(project.outDir, 'dependent'))).length, 0);
});

test('/readyz answers 503 while a migration is pending', async () => {
  await mappings({});
  const daemon = await startDaemon();
  try {
    await warehouse.pool.query('DELETE FROM segsync.migrations WHERE version = 20');
    const res = await fetch(`http://127.0.0.1:${daemon.port}/readyz`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { checks: { migrations: { ok: boolean; detail: string } } };
    assert.deepEqual(body.checks.migrations, { ok: false, detail: 'pending: 020_events' });
  } finally {
    await warehouse.pool.query(`INSERT INTO segsync.migrations (version, name) VALUES (20, '020_events') ON CONFLICT DO NOTHING`);
    await daemon.stop();
  }
});

test('a mapping that misses two ticks in a row is reported overdue once, not left to fail silently', async () => {
  // A run of ~4 s against a schedule of every second: the ticks in between are skipped, so it is overdue.
  await mappings({ stuck: mapping('stuck', 'schedule: "* * * * * *"\nbatch_size: 2\nconcurrency: 1', '1300') });
  const daemon = await startDaemon(syncEngine, 300);
  try {
    await sleep(3800);
  } finally {
    await daemon.stop();
  }
  const overdue = (await recentEvents(warehouse.pool, 'segsync', { mapping: 'stuck' })).filter((e) => e.kind === 'overdue');
  assert.equal(overdue.length, 1, 'reported once per incident');
  assert.equal(overdue[0]?.severity, 'warning');
  assert.match(overdue[0]?.message ?? '', /^stuck is overdue: no run started at \S+ or \S+; the latest started \S+ \((planning|planned|delivering)\)$/);
  assert.equal(overdue[0]?.details.running_here, true);
});

test('a scheduled read-back finds records missing from the destination and records a reconcile_drift event', async () => {
  await mappings({ readback: mapping('readback', 'batch_size: 3\nreconcile: {schedule: "* * * * * *", all: true}') });
  const daemon = await startDaemon();
  try {
    await daemon.context.scheduler.fire('readback', 'manual');
    // Someone deletes one delivered batch file (3 records) at the destination.
    const { readdir, rm } = await import('node:fs/promises');
    const dir = path.join(project.outDir, 'readback');
    const manifest = (await readdir(dir)).filter((n) => n.endsWith('.manifest.json')).sort()[0]!;
    await rm(path.join(dir, manifest));
    const deadline = Date.now() + 10_000;
    while (!(await recentEvents(warehouse.pool, 'segsync', { mapping: 'readback' })).some((e) => e.kind === 'reconcile_drift')) {
      assert.ok(Date.now() < deadline, 'a read-back ran');
      await sleep(100);
    }
  } finally {
    await daemon.stop();
  }
  const drift = (await recentEvents(warehouse.pool, 'segsync', { mapping: 'readback' })).find((e) => e.kind === 'reconcile_drift')!;
  assert.equal(drift.severity, 'error');
  assert.match(drift.message, /^readback: 3 missing and 0 drifted of 6 records read back$/);
  assert.ok(await metric('segsync_reconciled_records_total', { mapping: 'readback', status: 'missing' }) >= 3);
  assert.match(await registry.metrics(), /segsync_stage_duration_seconds_count\{stage="reconcile",mapping="readback"\} [1-9]/);
  const verdicts = (await warehouse.pool.query(`SELECT reconcile_status AS s, count(*)::int AS n FROM segsync.delivered WHERE mapping = 'readback' GROUP BY 1 ORDER BY 1`)).rows;
  assert.deepEqual(verdicts, [{ s: 'missing', n: 3 }, { s: 'verified', n: 3 }]);
});

test('a run a guardrail holds: the daemon shows the mapping held, raises one event and plans nothing new on later ticks; after approval it delivers the held plan', async () => {
  await warehouse.pool.query(`DROP TABLE IF EXISTS held_src; CREATE TABLE held_src AS SELECT * FROM segments`);
  await mappings({ guarded: FILE_MAPPING({ name: 'guarded', model: 'held_src', on_removed: 'clear', extra: 'schedule: "0 3 * * *"' }) });
  const daemon = await startDaemon();
  try {
    await daemon.context.scheduler.fire('guarded', 'manual');
    assert.deepEqual((await runsOf('guarded')).map((r) => r.status), ['succeeded']);
    // An upstream accident empties the model: the run would clear every delivered record.
    await warehouse.pool.query('TRUNCATE held_src');
    for (let i = 0; i < 3; i++) await daemon.context.scheduler.fire('guarded', 'manual');
    const runs = await runsOf('guarded');
    assert.deepEqual(runs.map((r) => r.status), ['succeeded', 'held'], 'one held run, not one per tick');
    const held = (await recentEvents(warehouse.pool, 'segsync', { mapping: 'guarded' })).filter((e) => e.kind === 'run_held');
    assert.equal(held.length, 1, 'one hold, one event');
    assert.match(held[0]!.message, /^guarded run \d+ held for approval: population: the source is empty while 6 record\(s\) are delivered/);
    const status = (await (await fetch(`http://127.0.0.1:${daemon.port}/status`)).json()) as { jobs: Record<string, { state: string; reason: string; lastRun: { runId: number; status: string } }> };
    assert.equal(status.jobs.guarded?.state, 'held');
    assert.equal(status.jobs.guarded?.lastRun.runId, runs[1]!.id);
    assert.equal(await metric('segsync_runs_total', { mapping: 'guarded', status: 'held' }), 1);
    // Approved (the emptying was on purpose): the next tick delivers exactly the held plan, the six clears.
    const { decideHeld } = await import('../src/sync/run.ts');
    await decideHeld(daemon.context.app, runs[1]!.id, 'approved', 'the shop closed', { type: 'cli', id: 'test' });
    await daemon.context.scheduler.fire('guarded', 'manual');
    const after = await runsOf('guarded');
    assert.deepEqual(after.map((r) => r.status), ['succeeded', 'succeeded']);
    const cleared = (await warehouse.pool.query(`SELECT count(*)::int AS n FROM segsync.receipts WHERE run_id = $1 AND op = 'remove' AND status = 'delivered'`, [runs[1]!.id])).rows[0].n;
    assert.equal(cleared, 6);
  } finally {
    await daemon.stop();
  }
});
