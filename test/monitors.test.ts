import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.ts';
import type { DaemonContext } from '../src/daemon/context.ts';
import { checkGate } from '../src/daemon/gate.ts';

import { loadDemoPayments } from '../src/demo/load.ts';
import { systemActor } from '../src/state/actor.ts';
import { ackMonitor } from '../src/state/monitor-results.ts';
import { blockingMonitors, runMonitors } from '../src/sync/monitors.ts';
import { buildAt, openApp } from './helpers/open-app.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, FILE_MAPPING, type TestProject } from './helpers/project.ts';

/**
 * Data-quality monitors on models built from deterministic demo data (issue 12, part 3): latency,
 * completeness against the same weekday, model anomalies; a critical one blocks the mappings that wait for
 * the models until it recovers or is acknowledged.
 */

const END = new Date('2026-01-01T00:00:00Z');
let db: TestDatabase;
let project: TestProject;
let app: App;
let close: () => Promise<void>;

const SETTINGS = (url: string, dir: string) => `warehouse:
  url: ${url}
connections:
  files: { type: file, directory: ${dir}/out }
monitors:
  - { name: fresh-payments, type: latency, warning: 3d, critical: 10d }
  - { name: daily-payments, type: completeness, days: 1, baseline_weeks: 4, warning: 0.5, critical: 0.9 }
  - { name: model-shape, type: model }
`;

before(async () => {
  db = await createTestDatabase();
  project = await createProject({ url: db.url });
  await project.write('config/segsync.yaml', SETTINGS(db.url, project.dir));
  await project.write('mappings/m.yaml', FILE_MAPPING({ model: 'rfm_current_segments', extra: 'after: [models]' }));
  ({ app, close } = await openApp(project));
  await loadDemoPayments(app.warehouse, { relation: 'fact_payments', users: 3000, months: 24, seed: 5, end: END });
  await build(END);
});

after(async () => {
  await close();
  await project.cleanup();
  await db.drop();
});

const build = (asOf: Date, fullRefresh = false) => buildAt(app, asOf, fullRefresh);
const q = async <T>(sql: string, params: unknown[] = []) => (await app.warehouse.pool.query(sql, params)).rows as T[];
const byName = async () => Object.fromEntries((await runMonitors(app)).map((r) => [r.monitor, r]));
/** The daemon's gate for the mapping that waits for the models (nothing else of a daemon is needed for it). */
const gate = () => checkGate({ app, lastBuild: null, scheduler: { current: () => undefined } } as unknown as DaemonContext, app.config.mappings[0]!.value);

describe('monitors on two years of demo payments', () => {
  test('ordinary data: every monitor is ok and nothing is blocked', async () => {
    const r = await byName();
    for (const name of ['fresh-payments', 'daily-payments', 'model-shape']) assert.equal(r[name]?.severity, 'ok', `${name}: ${r[name]?.detail}`);
    assert.match(r['fresh-payments']!.detail, /newest payment .* old at 2026-01-01/);
    assert.match(r['daily-payments']!.detail, /payment\(s\) on 2025-12-31, \d+% below the median/);
    assert.deepEqual(await blockingMonitors(app), []);
  });

  test('a missing day of payments is critical, blocks the mapping that waits for the models with the monitor named, and recovers when the data arrives', async () => {
    await q(`CREATE TABLE lastday AS SELECT * FROM fact_payments WHERE payment_date >= '2025-12-31'`);
    await q(`DELETE FROM fact_payments WHERE payment_date >= '2025-12-31'`);
    const r = await byName();
    assert.equal(r['daily-payments']!.severity, 'critical', r['daily-payments']!.detail);
    assert.match(r['daily-payments']!.detail, /^0 payment\(s\) on 2025-12-31, 100% below the median/);
    const g = await gate();
    assert.ok(!g.ok && g.cause === 'monitor daily-payments', JSON.stringify(g));
    const [ev] = await q<{ severity: string; message: string }>(`SELECT severity, message FROM segsync.events WHERE kind = 'monitor' ORDER BY id DESC LIMIT 1`);
    assert.deepEqual(ev!.severity, 'critical');
    await q(`INSERT INTO fact_payments SELECT * FROM lastday`);
    assert.equal((await byName())['daily-payments']!.severity, 'ok');
    assert.deepEqual((await gate()).ok, true);
    assert.equal((await q(`SELECT 1 FROM segsync.events WHERE kind = 'monitor_recovered'`)).length, 1, 'a recovery is an event too');
  });

  test('an acknowledged critical monitor blocks nothing while it stays critical', async () => {
    await q(`DELETE FROM fact_payments WHERE payment_date >= '2025-12-31'`);
    await byName();
    assert.equal((await blockingMonitors(app)).length, 1);
    assert.equal(await ackMonitor(app.warehouse.pool, 'segsync', 'daily-payments', systemActor, 'the shop was closed'), true);
    assert.equal((await gate()).ok, true);
    const again = await byName();
    assert.equal(again['daily-payments']!.severity, 'critical');
    assert.equal(again['daily-payments']!.ackReason, 'the shop was closed', 'the acknowledgement carries over');
    assert.equal((await gate()).ok, true);
    await q(`INSERT INTO fact_payments SELECT * FROM lastday`);
  });

  test('the newest payment three weeks before the as-of instant is critical latency', async () => {
    await build(new Date('2026-01-22T00:00:00Z'));
    const r = await byName();
    assert.equal(r['fresh-payments']!.severity, 'critical', r['fresh-payments']!.detail);
    assert.match(r['fresh-payments']!.detail, /newest payment 2\dd\S* old at 2026-01-22/);
    await build(END, true);
    assert.equal((await byName())['fresh-payments']!.severity, 'ok');
  });

  test('model anomalies: metrics zeroed in a large segment, and a shift of segment shares', async () => {
    const [big] = await q<{ s: string }>(`SELECT rfm_segment AS s FROM rfm_current_segments GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`);
    await q(`UPDATE rfm_segments_hist SET monetary = 0 WHERE snapshot_at = (SELECT max(snapshot_at) FROM rfm_segments_hist) AND rfm_segment = $1`, [big!.s]);
    let r = await byName();
    assert.equal(r['model-shape']!.severity, 'critical');
    assert.match(r['model-shape']!.detail, new RegExp(`frequency or monetary sums to zero in large segment\\(s\\): ${big!.s}`));
    await build(END, true);
    assert.equal((await byName())['model-shape']!.severity, 'ok');
    await q(`UPDATE rfm_segments_hist SET rfm_segment = 'Champions' WHERE snapshot_at = (SELECT max(snapshot_at) FROM rfm_segments_hist) AND rfm_segment = $1`, [big!.s]);
    r = await byName();
    assert.equal(r['model-shape']!.severity, 'critical', r['model-shape']!.detail);
    assert.match(r['model-shape']!.detail, /segment shares moved by PSI \d\.\d+ from 2025-12-01 to 2026-01-01/);
    await build(END, true);
  });

  test('segsync monitors --format json: the results, and exit 1 while one is critical and not acknowledged', async () => {
    const ok = await project.cli(['monitors', '--format', 'json']);
    assert.equal(ok.code, 0, ok.stderr);
    const results = JSON.parse(ok.stdout) as Array<{ monitor: string; severity: string }>;
    assert.deepEqual(results.map((r) => `${r.monitor}:${r.severity}`).sort(), ['daily-payments:ok', 'fresh-payments:ok', 'model-shape:ok']);
    await q(`DELETE FROM fact_payments WHERE payment_date >= '2025-12-31'`);
    const bad = await project.cli(['monitors', '--monitor', 'daily-payments']);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /daily-payments\s+completeness\s+critical/);
    const unknown = await project.cli(['monitors', 'ack', 'nope', '--reason', 'x']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no monitor named 'nope'/);
    const acked = await project.cli(['monitors', 'ack', 'daily-payments', '--reason', 'a holiday']);
    assert.equal(acked.code, 0, acked.stderr);
    assert.equal((await project.cli(['monitors', '--monitor', 'daily-payments'])).code, 0, 'acknowledged: no longer blocking');
    await q(`INSERT INTO fact_payments SELECT * FROM lastday`);
  });

  test('bad monitor configuration is a located error', async () => {
    await project.write('config/segsync.yaml', SETTINGS(db.url, project.dir).replace('warning: 0.5, critical: 0.9', 'warning: 1.5, critical: 0.9').replace('type: model }', 'type: modle }'));
    const out = await project.cli(['validate', '--offline']);
    assert.equal(out.code, 2, out.stderr);
    assert.match(out.stderr, /config\/segsync\.yaml:\d+:\d+ \(monitors\.1\.warning\): .*from 0 to 1/);
    assert.match(out.stderr, /config\/segsync\.yaml:\d+:\d+ \(monitors\.2\.type\)/);
    await project.write('config/segsync.yaml', SETTINGS(db.url, project.dir));
  });
});


