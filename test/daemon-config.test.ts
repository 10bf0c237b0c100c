import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { loadConfig } from '../src/app.ts';
import { loadProject } from '../src/config/load.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { recentEvents } from '../src/daemon/events.ts';
import { syncEngine } from '../src/daemon/sync-adapter.ts';
import type { Warehouse } from '../src/db/warehouse.ts';
import { createRootLogger } from '../src/log.ts';
import { buildModels } from '../src/models/build.ts';
import { createPayments, insertPayments, randomPayments } from './helpers/payments.ts';
import { testLog, useFreshWarehouse } from './helpers/pg.ts';
import { createProject, FILE_MAPPING, seedSegments, type TestProject } from './helpers/project.ts';

/**
 * The shipped daemon config works: models.schedule is there, a mapping chooses what freshness means (the
 * data's as-of, or the last successful build: historical data stays syncable), a mapping whose credentials
 * are missing is disabled and reported, and only jobs with a schedule are logged as scheduled.
 */
let warehouse: Warehouse;
let project: TestProject;

useFreshWarehouse('postgres', async (w, { url }) => {
  warehouse = w;
  project = await createProject({ url });
  await project.write('config/segsync.yaml', `warehouse: {url: '${url}'}
models: {schema: public, payments: fact_payments, schedule: "0 3 * * *"}
connections:
  files: {type: file, directory: '${project.outDir}'}
  hub: {type: hubspot, access_token: '\${SEGSYNC_TEST_SURELY_UNSET_TOKEN}'}
daemon: {port: 0, host: 127.0.0.1, drain_timeout: 10s, catch_up: false}
`);
  await seedSegments(warehouse.pool, 5); // snapshot_at 2024-01-01: data that is "old" by its own as-of
  await createPayments(warehouse.pool);
  await insertPayments(warehouse.pool, randomPayments(3, 20, new Date('2011-01-01T00:00:00Z'), new Date('2011-12-01T00:00:00Z')));
  await buildModels(warehouse.pool, { schema: 'public', payments: 'fact_payments', asOf: new Date('2011-12-10T00:00:00Z'), log: testLog });
});
after(() => project.cleanup());

test('freshness: build syncs historical data, freshness: data blocks it; missing credentials disable a mapping; no "scheduled" log without a schedule', async () => {
  delete process.env.SEGSYNC_TEST_SURELY_UNSET_TOKEN;
  const after = 'after: [models]\nmax_staleness: 26h\n';
  await project.write('mappings/by-build.yaml', FILE_MAPPING({ name: 'by-build', extra: `schedule: "0 4 * * *"\n${after}freshness: build\n` }));
  await project.write('mappings/by-data.yaml', FILE_MAPPING({ name: 'by-data', extra: `${after}freshness: data\n` }));
  await project.write('mappings/to-hub.yaml', FILE_MAPPING({ name: 'to-hub', extra: `schedule: "0 5 * * *"\n` }).replace('connection: files', 'connection: hub').replace(/  options:\n    format: ndjson\n    throttle_ms: 0\n/, ''));
  const lines: string[] = [];
  const logger = createRootLogger({ level: 'debug', pretty: false, destination: new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }) });
  const config = await loadProject({ root: project.dir });
  const daemon = new Daemon({ app: { config, warehouse, log: logger }, engine: syncEngine, loadConfig: () => loadProject({ root: project.dir }) });
  await daemon.start();
  try {
    const scheduled = lines.map((l) => JSON.parse(l) as { msg: string; job?: string }).filter((l) => l.msg === 'job scheduled').map((l) => l.job).sort();
    assert.deepEqual(scheduled, ['by-build', 'erasures', 'models'], 'only jobs with a schedule are logged as scheduled (by-data has none; to-hub is disabled; erasures retries open erasures on privacy.erasure_schedule)');

    const status = daemon.status() as { jobs: Record<string, { state?: string; reason?: string }> };
    assert.equal(status.jobs['to-hub']?.state, 'disabled');
    assert.match(status.jobs['to-hub']?.reason ?? '', /credentials missing: .*SEGSYNC_TEST_SURELY_UNSET_TOKEN is not set/);
    assert.equal(daemon.context.scheduler.has('to-hub'), false, 'a disabled mapping is not scheduled to fail at night');
    const events = await recentEvents(warehouse.pool, 'segsync', { mapping: 'to-hub' });
    assert.equal(events[0]?.kind, 'mapping_disabled');

    await daemon.context.scheduler.fire('by-build', 'manual');
    await daemon.context.scheduler.fire('by-data', 'manual');
    const runs = (await warehouse.pool.query<{ mapping: string; status: string; error: string | null }>(`SELECT mapping, status, error FROM segsync.runs ORDER BY id`)).rows;
    assert.deepEqual(runs.map((r) => [r.mapping, r.status]), [['by-build', 'succeeded'], ['by-data', 'blocked']]);
    assert.match(runs[1]!.error ?? '', /stale model: the model is .* old \(as of 2024-01-01/);
  } finally {
    await daemon.stop('test over');
  }
});

test('a broken mapping file at start is left out and reported (event); a reload while it is broken is refused', async () => {
  await project.write('mappings/zz-broken.yaml', 'name: zz-broken\nsource: [unclosed\n');
  const config = await loadProject({ root: project.dir, skipBrokenMappings: true });
  const daemon = new Daemon({ app: { config, warehouse, log: testLog }, engine: syncEngine, loadConfig: () => loadProject({ root: project.dir }) });
  await daemon.start();
  try {
    assert.ok(daemon.context.scheduler.has('by-build'), 'the other mappings are scheduled');
    const events = await recentEvents(warehouse.pool, 'segsync', { mapping: 'zz-broken' });
    assert.equal(events[0]?.kind, 'mapping_broken');
    assert.match(events[0]?.message ?? '', /mapping zz-broken \(.*zz-broken\.yaml\) is not scheduled: its file has 1 problem/);
    assert.equal(await daemon.reload(), false, 'a strict reload refuses the broken file');
  } finally {
    await daemon.stop('test over');
  }
});

test('the shipped settings have a models schedule and the shipped after: [models] mappings measure freshness by build', async () => {
  const shipped = await loadConfig({ root: new URL('..', import.meta.url).pathname });
  assert.ok(shipped.settings.models.schedule, 'config/segsync.yaml: models.schedule');
  for (const m of shipped.mappings.filter((x) => x.value.after?.includes('models'))) assert.equal(m.value.freshness, 'build', m.file);
});
