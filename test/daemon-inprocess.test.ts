import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { loadProject } from '../src/config/load.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import type { RunSummary, SyncEngine } from '../src/daemon/engine.ts';
import { recentEvents } from '../src/daemon/events.ts';
import { openWarehouse, type Warehouse } from '../src/db/warehouse.ts';
import { LockedError } from '../src/errors.ts';
import { registry } from '../src/metrics.ts';
import { createTestDatabase, testLog, type TestDatabase } from './helpers/pg.ts';
import { fileMapping, testProject, type TestProject } from './helpers/daemon-project.ts';

/**
 * The daemon's own machinery (scheduler, gates, SLA events, reload, HTTP, stop) against real Postgres, with
 * a scripted engine standing in for runMapping so timing is exact. The end-to-end tests with the real engine
 * and spawned daemons are in daemon-e2e.test.ts.
 */

let db: TestDatabase;
let warehouse: Warehouse;

before(async () => {
  db = await createTestDatabase();
  warehouse = await openWarehouse({ url: db.url, log: testLog });
});
after(async () => {
  await warehouse.close();
  await db.drop();
});

interface Script { ms: number; active: number; maxActive: number; started: number; aborted: number; freshness: Date | null }

function scriptedEngine(script: Record<string, Script>): SyncEngine {
  let nextId = 1;
  return {
    async runMapping(_app, name, opts): Promise<RunSummary> {
      const s = script[name]!;
      if (s.active > 0) throw new LockedError('LOCKED', `${name} is locked`);
      s.active++;
      s.started++;
      s.maxActive = Math.max(s.maxActive, s.active);
      const startedAt = new Date();
      try {
        await sleep(s.ms, undefined, { signal: opts.signal }).catch(() => { s.aborted++; });
      } finally {
        s.active--;
      }
      const counts = { create: 1, update: 0, remove: 0, unchanged: 0, delivered: 1, failed: 0, deferred: 0, dead: 0 };
      return { runId: nextId++, mapping: name, status: opts.signal?.aborted ? 'interrupted' : 'succeeded', counts, startedAt, finishedAt: new Date() };
    },
    buildModels: async () => ({}),
    modelFreshness: async () => Object.values(script)[0]?.freshness ?? null,
    async migrate(pool: pg.Pool, schema: string) {
      const sql = await readFile(new URL('../src/state/migrations/020_events.sql', import.meta.url), 'utf8');
      await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}; SET search_path TO ${schema}; ${sql}; RESET search_path`);
    },
    pendingMigrations: async () => [],
    lastRun: async () => null,
    markInterrupted: async () => [],
    recordBlocked: async () => nextId++,
    isLocked: (err) => err instanceof LockedError,
  };
}

const SETTINGS = (schema: string, extra = '') => `state: {schema: ${schema}}
connections:
  files: {type: file, directory: out}
daemon: {port: 0, host: 127.0.0.1, drain_timeout: 5s}
${extra}`;

async function startDaemon(project: TestProject, engine: SyncEngine): Promise<Daemon> {
  const config = await loadProject({ root: project.root });
  const daemon = new Daemon({ app: { config, warehouse, log: testLog }, engine, loadConfig: () => loadProject({ root: project.root }) });
  await daemon.start();
  return daemon;
}

const script = (ms: number, freshness: Date | null = new Date()): Script => ({ ms, active: 0, maxActive: 0, started: 0, aborted: 0, freshness });

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return m.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want)).reduce((a, v) => a + v.value, 0);
}

test('a seconds-level schedule fires; ticks during a slow run are skipped and counted, never overlapped', async () => {
  const project = await testProject();
  await project.writeSettings(SETTINGS('d_overlap'));
  await project.writeMapping('slow', fileMapping('slow', 'schedule: "* * * * * *"'));
  const s = { slow: script(2500) };
  const daemon = await startDaemon(project, scriptedEngine(s));
  try {
    await sleep(4600);
    assert.ok(s.slow.started >= 1, 'the schedule fired');
    assert.equal(s.slow.maxActive, 1, 'never two runs at once');
    assert.ok(await metric('segsync_skipped_ticks_total', { job: 'slow', reason: 'overlap' }) >= 2, 'skipped ticks are counted');
  } finally {
    assert.equal(await daemon.stop(), true);
    await project.cleanup();
  }
});

test('a stale model blocks a dependent mapping with a visible status and an event, never a silent skip', async () => {
  const project = await testProject();
  await project.writeSettings(SETTINGS('d_stale'));
  await project.writeMapping('gated', fileMapping('gated', 'schedule: "* * * * * *"\nafter: [models]\nmax_staleness: 1h'));
  const s = { gated: script(10, new Date(Date.now() - 2 * 3_600_000)) };
  const daemon = await startDaemon(project, scriptedEngine(s));
  try {
    await sleep(2300);
    assert.equal(s.gated.started, 0, 'the sync did not run');
    const status = daemon.status() as { jobs: Record<string, { state: string; reason: string }> };
    assert.equal(status.jobs.gated?.state, 'blocked');
    assert.equal(status.jobs.gated?.reason, 'blocked: stale model');
    const events = await recentEvents(warehouse.pool, 'd_stale', { mapping: 'gated' });
    assert.ok(events.length >= 1);
    assert.equal(events[0]?.kind, 'blocked');
    assert.match(events[0]?.message ?? '', /stale model: the model is 2h\d*m?\d*s? old/);
    assert.equal(events[0]?.dedupKey, 'blocked:gated:stale model');
    assert.ok(await metric('segsync_runs_total', { mapping: 'gated', status: 'blocked' }) >= 1);
    // Fresh data unblocks it on the next tick.
    s.gated.freshness = new Date();
    await sleep(1500);
    assert.ok(s.gated.started >= 1);
  } finally {
    await daemon.stop();
    await project.cleanup();
  }
});

test('a run over its SLA records an sla_breach event while it is still running', async () => {
  const project = await testProject();
  await project.writeSettings(SETTINGS('d_sla'));
  await project.writeMapping('late', fileMapping('late', 'sla: {run: 1s}'));
  const s = { late: script(1800) };
  const daemon = await startDaemon(project, scriptedEngine(s));
  try {
    const run = daemon.context.scheduler.fire('late', 'manual');
    await sleep(1300);
    const events = await recentEvents(warehouse.pool, 'd_sla', { mapping: 'late' });
    assert.equal(events[0]?.kind, 'sla_breach');
    assert.equal(events[0]?.severity, 'warning');
    assert.equal(events[0]?.details.stage, 'run');
    assert.equal(events[0]?.details.still_running, true);
    await run;
  } finally {
    await daemon.stop();
    await project.cleanup();
  }
});

test('reload applies a valid config and rejects an invalid one, keeping the old schedules', async () => {
  const project = await testProject();
  await project.writeSettings(SETTINGS('d_reload'));
  await project.writeMapping('one', fileMapping('one', 'schedule: "0 3 * * *"'));
  await project.writeMapping('two', fileMapping('two', 'schedule: "0 4 * * *"'));
  const s = { one: script(10), two: script(10), three: script(10) };
  const daemon = await startDaemon(project, scriptedEngine(s));
  try {
    await project.removeMapping('two');
    await project.writeMapping('three', fileMapping('three', 'schedule: "* * * * * *"'));
    assert.equal(await daemon.reload(), true);
    assert.equal(daemon.context.scheduler.has('two'), false);
    await sleep(1500);
    assert.ok(s.three.started >= 1, 'the new mapping runs on its schedule');

    await project.writeMapping('three', fileMapping('three', 'schedule: "every second"'));
    await project.writeMapping('four', fileMapping('four', 'schedule: "* * * * *"\nmode: sideways'));
    assert.equal(await daemon.reload(), false);
    const rejected = (await recentEvents(warehouse.pool, 'd_reload')).find((e) => e.kind === 'config_rejected');
    assert.ok(rejected);
    const problems = rejected.details.problems as Array<{ file: string; path: string; line: number }>;
    assert.deepEqual(problems.map((p) => p.path).sort(), ['mode', 'schedule']);
    assert.ok(problems.every((p) => p.line > 0 && /mappings\/(three|four)\.yaml$/.test(p.file)));
    assert.equal(daemon.context.scheduler.has('four'), false);
    const before = s.three.started;
    await sleep(1200);
    assert.ok(s.three.started > before, 'the old schedule of three keeps running');
  } finally {
    await daemon.stop();
    await project.cleanup();
  }
});

test('HTTP answers /healthz, /readyz, /metrics and /status', async () => {
  const project = await testProject();
  await project.writeSettings(SETTINGS('d_http'));
  await project.writeMapping('web', fileMapping('web', 'schedule: "0 3 * * *"'));
  const daemon = await startDaemon(project, scriptedEngine({ web: script(10) }));
  try {
    const base = `http://127.0.0.1:${daemon.port}`;
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(((await ready.json()) as { checks: object }).checks, { accepting: { ok: true }, database: { ok: true }, migrations: { ok: true } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of ['segsync_runs_total', 'segsync_records_total', 'segsync_stage_duration_seconds', 'segsync_rate_budget_used_ratio', 'segsync_last_success_timestamp_seconds', 'segsync_model_freshness_lag_seconds', 'segsync_skipped_ticks_total', 'segsync_process_cpu_seconds_total']) {
      assert.match(metrics, new RegExp(`# TYPE ${name} `), name);
    }
    const status = (await (await fetch(`${base}/status`)).json()) as { jobs: Record<string, { schedule: string; next: string }> };
    assert.equal(status.jobs.web?.schedule, '0 3 * * *');
    assert.match(status.jobs.web?.next ?? '', /T03:00:00/);
  } finally {
    await daemon.stop();
    await project.cleanup();
  }
});

test('stop aborts in-flight runs through their signal, drains, and is idempotent', async () => {
  const project = await testProject();
  await project.writeSettings(SETTINGS('d_stop'));
  await project.writeMapping('long', fileMapping('long'));
  const s = { long: script(60_000) };
  const daemon = await startDaemon(project, scriptedEngine(s));
  const run = daemon.context.scheduler.fire('long', 'manual');
  await sleep(200);
  const t0 = Date.now();
  const first = daemon.stop('test');
  const second = daemon.stop('again');
  assert.equal(first, second);
  assert.equal(await first, true);
  assert.ok(Date.now() - t0 < 3000);
  await run;
  assert.equal(s.long.aborted, 1);
  assert.equal(daemon.context.scheduler.fire('long', 'manual'), null, 'nothing starts after stop');
  await project.cleanup();
});
