import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { runMapping } from '../src/sync/run.ts';
import { reconcileMapping } from '../src/sync/reconcile.ts';
import type { SalesforceEmulator } from './emulators/salesforce/index.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { CLI, createProject, seedSegments, type TestProject } from './helpers/project.ts';
import { emulator } from './helpers/salesforce.ts';
import { waitFor } from './helpers/wait.ts';

// End to end: warehouse rows -> engine -> jsforce -> emulator, through runMapping, reconcile and the CLI.

const MAPPING = (over: { name?: string; options?: string; extra?: string } = {}) => `name: ${over.name ?? 'rfm-sf'}
source:
  model: segments
  key: user_id
destination:
  connection: salesforce
  object: Contact
  match_key: Customer_Id__c
  options: { bulk_poll_interval_ms: 20${over.options ?? ''} }
fields:
  - { to: LastName, from: user_id }
  - { to: RFM_Segment__c, from: rfm_segment }
  - { to: RFM_Recency_Days__c, from: recency_score, transform: number }
  - { to: RFM_Monetary__c, from: monetary, transform: number }
${over.extra ?? ''}
# These tests move every record's segment on purpose (limits, storms): the guardrails that would hold
# such runs are off here; test/guardrails.test.ts covers them.
guardrails: { disable: [changed, distribution, anomaly] }
`;

const SETTINGS = (url: string) => `warehouse:
  url: ${url}
connections:
  salesforce:
    type: salesforce
    api_version: "62.0"
    login_url: \${SALESFORCE_LOGIN_URL}
    client_id: \${SALESFORCE_CLIENT_ID}
    client_secret: \${SALESFORCE_CLIENT_SECRET}
`;

interface Env { sf: SalesforceEmulator; db: TestDatabase; project: TestProject }

async function setup(opts: Parameters<typeof emulator>[0] = {}, mappings: Record<string, string> = { 'rfm-sf.yaml': MAPPING() }): Promise<Env> {
  const sf = await emulator(opts);
  process.env.SALESFORCE_LOGIN_URL = sf.url;
  process.env.SALESFORCE_CLIENT_ID = sf.auth.clientId;
  process.env.SALESFORCE_CLIENT_SECRET = sf.auth.clientSecret;
  const db = await createTestDatabase();
  const project = await createProject({ url: db.url, settings: SETTINGS(db.url) });
  for (const [file, text] of Object.entries(mappings)) await project.write(`mappings/${file}`, text);
  return { sf, db, project };
}

async function teardown(e: Env): Promise<void> {
  await e.project.cleanup();
  await e.db.drop();
  await e.sf.close();
}

const segmentOf = (sf: SalesforceEmulator, key: string) => sf.findBy('Contact', 'Customer_Id__c', key)?.RFM_Segment__c;

describe('Salesforce through the sync engine', () => {
  let e: Env;
  // Batches of 200 (one Collections call each): the budget test below needs the engine to see the stop on a
  // batch boundary (see the note on partially deferred batches in docs/destinations/salesforce.md).
  before(async () => { e = await setup({}, { 'rfm-sf.yaml': MAPPING({ extra: 'batch_size: 200' }) }); });
  after(async () => { await teardown(e); });

  test('first run delivers over Collections, a rerun sends nothing, an invalid value fails only its record', async () => {
    await e.project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 60);
      const first = await runMapping(app, 'rfm-sf');
      assert.equal(first.status, 'succeeded', first.error);
      assert.deepEqual([first.counts.create, first.counts.delivered, first.counts.failed], [60, 60, 0]);
      assert.equal(e.sf.records('Contact').length, 60);
      const c = e.sf.findBy('Contact', 'Customer_Id__c', 'u0002')!;
      assert.deepEqual([c.LastName, c.RFM_Segment__c, c.RFM_Recency_Days__c, c.RFM_Monetary__c], ['u0002', 'Champions', 2, 10.5]);
      const calls = e.sf.count('collections.upsert');
      const second = await runMapping(app, 'rfm-sf');
      assert.equal(second.counts.unchanged, 60);
      assert.equal(e.sf.count('collections.upsert'), calls, 'nothing changed: no upsert');

      await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Hibernating' WHERE user_id IN ('u0001', 'u0003')`);
      await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Bogus' WHERE user_id = 'u0005'`);
      const third = await runMapping(app, 'rfm-sf');
      assert.equal(third.status, 'partial');
      assert.deepEqual([third.counts.update, third.counts.delivered, third.counts.failed], [3, 2, 1]);
      assert.equal(segmentOf(e.sf, 'u0001'), 'Hibernating');
      assert.equal(segmentOf(e.sf, 'u0005'), 'At Risk');
      const r = await app.warehouse.pool.query(`SELECT status, error_code FROM segsync.receipts WHERE run_id = $1 AND key = 'u0005'`, [third.runId]);
      assert.deepEqual(r.rows.map((x) => [x.status, x.error_code]), [['failed', 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST']]);
      await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Lost' WHERE user_id = 'u0005'`);
    });
  });

  test('reconcile finds an edited and a deleted contact; --repair and a run restore them', async () => {
    await e.project.app(async (app) => {
      await runMapping(app, 'rfm-sf');
      const edited = e.sf.findBy('Contact', 'Customer_Id__c', 'u0010')!;
      e.sf.editRecord('Contact', String(edited.Id), { RFM_Segment__c: 'Lost' });
      e.sf.deleteRecord('Contact', String(e.sf.findBy('Contact', 'Customer_Id__c', 'u0011')!.Id));
      const rec = await reconcileMapping(app, 'rfm-sf', { all: true, repair: true });
      assert.deepEqual(rec.counts, { verified: 58, drifted: 1, missing: 1, unverifiable: 0 });
      assert.deepEqual(rec.examples.map((x) => [x.key, x.status, x.driftedFields ?? []]).sort(), [['u0010', 'drifted', ['RFM_Segment__c']], ['u0011', 'missing', []]]);
      assert.equal(rec.repaired, 2);
      const fix = await runMapping(app, 'rfm-sf');
      assert.equal(fix.counts.delivered, 2);
      assert.equal(segmentOf(e.sf, 'u0010'), edited.RFM_Segment__c);
      assert.ok(e.sf.findBy('Contact', 'Customer_Id__c', 'u0011'));
      const clean = await reconcileMapping(app, 'rfm-sf', { all: true });
      assert.deepEqual(clean.counts, { verified: 60, drifted: 0, missing: 0, unverifiable: 0 });
    });
  });

  test('the daily budget ends the run as deferred; the next day the rest goes through', async () => {
    await e.project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 1000, (i) => (i % 3 ? 'Loyal Customers' : 'Promising'));
      e.sf.dailyLimit = Math.ceil((e.sf.used + 4) / 0.8); // 80% of the limit leaves room for a few calls of 200
      const run = await runMapping(app, 'rfm-sf');
      assert.equal(run.status, 'deferred', run.error);
      assert.ok(run.counts.deferred > 0 && run.counts.delivered > 0, JSON.stringify(run.counts));
      assert.ok(e.sf.used <= Math.floor(e.sf.dailyLimit * 0.8), `${e.sf.used} of ${e.sf.dailyLimit}`);
      e.sf.dailyLimit = 1_000_000;
      e.sf.resetDailyUsage();
      const next = await runMapping(app, 'rfm-sf');
      assert.equal(next.status, 'succeeded', next.error);
      assert.equal(e.sf.records('Contact').filter((r) => r.RFM_Segment__c === 'Promising').length, 334);
      assert.equal(e.sf.records('Contact').length, 1000);
    });
  });
});

describe('Salesforce through the CLI', () => {
  let e: Env;
  before(async () => {
    e = await setup({ latencyMs: 40 }, {
      'rfm-sf.yaml': MAPPING({ extra: 'batch_size: 100' }),
      'rfm-sf-bulk.yaml': MAPPING({ name: 'rfm-sf-bulk', options: ', bulk_threshold: 50' }),
    });
  });
  after(async () => { await teardown(e); });

  test('setup prints the admin\'s field list and the Case formula; validate passes', async () => {
    const setupOut = await e.project.cli(['setup', 'rfm-sf']);
    assert.equal(setupOut.code, 0, setupOut.stderr);
    assert.match(setupOut.stdout, /Formula \(Text\), formula TEXT\(Contact\.RFM_Segment__c\)/);
    await e.project.app((app) => seedSegments(app.warehouse.pool, 10));
    const v = await e.project.cli(['validate']);
    assert.equal(v.code, 0, v.stderr);
  });

  test('kill -9 in the middle of `segsync run`, then a rerun converges with no duplicates', async () => {
    await e.project.app((app) => seedSegments(app.warehouse.pool, 1200, (i) => (i % 2 ? 'Champions' : 'Need Attention')));
    const env = { ...process.env, SEGSYNC_DATABASE_URL: '', SEGSYNC_LOG_LEVEL: 'error' };
    const child = spawn(process.execPath, [CLI, 'run', 'rfm-sf'], { cwd: e.project.dir, env, stdio: 'ignore' });
    await waitFor('three Collections calls', () => e.sf.count('collections.upsert') >= 3, 60_000, 10).finally(() => child.kill('SIGKILL'));
    await new Promise((r) => child.on('close', r));
    const partial = e.sf.records('Contact').length;
    assert.ok(partial > 0 && partial < 1200, `killed mid-run with ${partial} contacts`);
    const rerun = await e.project.cli(['run', 'rfm-sf']);
    assert.equal(rerun.code, 0, rerun.stderr);
    const all = e.sf.records('Contact');
    assert.equal(all.length, 1200);
    assert.equal(new Set(all.map((r) => r.Customer_Id__c)).size, 1200);
    assert.equal(all.filter((r) => r.RFM_Segment__c === 'Champions').length, 600);
    const rec = await e.project.cli(['reconcile', 'rfm-sf', '--all']);
    assert.equal(rec.code, 0, rec.stdout + rec.stderr);
  });

  test('the same model through Bulk API 2.0 reaches the same records', async () => {
    // A segment the Collections run did not write, so the records show that Bulk wrote them.
    await e.project.app((app) => app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'At Risk'`));
    e.sf.resetCounters();
    const run = await e.project.cli(['run', 'rfm-sf-bulk']);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(e.sf.count('bulk.create') >= 1);
    assert.equal(e.sf.count('collections.upsert'), 0);
    const all = e.sf.records('Contact');
    assert.equal(all.length, 1200);
    assert.equal(all.filter((r) => r.RFM_Segment__c === 'At Risk').length, 1200);
  });
});
