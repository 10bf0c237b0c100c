import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { runMapping } from '../src/sync/run.ts';
import { reconcileMapping } from '../src/sync/reconcile.ts';
import { startHubSpotEmulator, type HubSpotEmulator } from './emulators/hubspot/server.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { CLI, createProject, seedSegments, type TestProject } from './helpers/project.ts';
import { HUBSPOT_MAPPING, HUBSPOT_SETTINGS } from './helpers/hubspot.ts';
import { waitFor } from './helpers/wait.ts';

/** End to end: warehouse -> engine -> HubSpot destination -> real SDK -> emulator, in-process and via the CLI. */

const SETTINGS = HUBSPOT_SETTINGS;

// These tests move every record's segment on purpose (limits, storms): the guardrails that would hold such
// runs are off here; test/guardrails.test.ts covers them.
const MAPPING = (extra = '') => HUBSPOT_MAPPING('seg-to-hubspot', `${extra}\nguardrails: { disable: [changed, distribution, anomaly] }`);

async function projectFor(hs: HubSpotEmulator, extra = ''): Promise<{ db: TestDatabase; project: TestProject }> {
  process.env.HUBSPOT_ACCESS_TOKEN = hs.token;
  process.env.HUBSPOT_BASE_URL = hs.url;
  const db = await createTestDatabase();
  const project = await createProject({ url: db.url, settings: SETTINGS(db.url) });
  await project.write('mappings/m.yaml', MAPPING(extra));
  return { db, project };
}

function valuesOf(hs: HubSpotEmulator): Map<string, Record<string, string>> {
  return new Map(hs.records('contacts').map((r) => [r.properties.user_id!, r.properties]));
}

describe('HubSpot through the sync engine', () => {
  let hs: HubSpotEmulator;
  let db: TestDatabase;
  let project: TestProject;
  before(async () => {
    hs = await startHubSpotEmulator();
    ({ db, project } = await projectFor(hs));
  });
  after(async () => {
    await hs.close();
    await project.cleanup();
    await db.drop();
  });

  test('`segsync validate` names what is missing, `setup --apply` creates it, a run delivers every segment, a rerun sends nothing', async () => {
    await project.app((app) => seedSegments(app.warehouse.pool, 230));
    const before = await project.cli(['validate', 'seg-to-hubspot']);
    assert.notEqual(before.code, 0);
    assert.match(before.stderr, /contacts\.rfm_segment \(segment <- rfm_segment\) does not exist in HubSpot; create it with `segsync setup seg-to-hubspot --apply`/);
    const setup = await project.cli(['setup', 'seg-to-hubspot', '--apply']);
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stdout, /created: contacts\.rfm_segment \(enumeration\)/);
    assert.equal(hs.crm.store('contacts')!.properties.get('rfm_segment')!.options.length, 10);
    const after = await project.cli(['validate', 'seg-to-hubspot']);
    assert.equal(after.code, 0, after.stderr);
    await project.app(async (app) => {
      const run = await runMapping(app, 'seg-to-hubspot', { shared: new Map() });
      assert.equal(run.status, 'succeeded', run.error);
      assert.deepEqual([run.counts.create, run.counts.delivered, run.counts.failed], [230, 230, 0]);
      assert.equal(hs.records('contacts').length, 230);
      assert.equal(hs.count('POST', '/crm/v3/objects/contacts/batch/upsert'), 3);
      const v = valuesOf(hs).get('u0003')!;
      assert.deepEqual([v.rfm_segment, v.rfm_recency_score, v.rfm_monetary, v.segsync_last_run], ['At Risk', '3', '21', String(run.runId)]);
      const receipt = await app.warehouse.pool.query(`SELECT destination_id FROM segsync.receipts WHERE key = 'u0003'`);
      assert.equal(receipt.rows[0].destination_id, v.hs_object_id);
      const calls = hs.requests.length;
      const again = await runMapping(app, 'seg-to-hubspot', { shared: new Map() });
      assert.equal(again.counts.unchanged, 230);
      assert.equal(hs.count('POST', '/crm/v3/objects/contacts/batch/upsert'), 3);
      assert.ok(hs.requests.length - calls <= 1, 'only the schema check');
    });
  });

  test('`segsync reconcile --all --repair` finds a contact edited in HubSpot and one deleted there; the next run puts them back', async () => {
    await project.app(async (app) => {
      hs.edit('contacts', hs.find('contacts', 'user_id', 'u0010')!.id, 'rfm_segment', 'Hibernating');
      hs.purge('contacts', hs.find('contacts', 'user_id', 'u0011')!.id);
      const cli = await project.cli(['reconcile', 'seg-to-hubspot', '--all', '--repair', '--format', 'json']);
      assert.equal(cli.stderr, '');
      const r = JSON.parse(cli.stdout) as { counts: Record<string, number>; repaired: number; examples: Array<{ key: string; status: string; driftedFields?: string[] }> };
      assert.deepEqual(r.counts, { verified: 228, drifted: 1, missing: 1, unverifiable: 0 });
      assert.equal(r.repaired, 2);
      assert.deepEqual(r.examples.map((e) => [e.key, e.status, e.driftedFields ?? []]).sort(), [['u0010', 'drifted', ['rfm_segment']], ['u0011', 'missing', []]]);
      const run = await runMapping(app, 'seg-to-hubspot', { shared: new Map() });
      assert.equal(run.counts.delivered, 2);
      assert.equal(valuesOf(hs).get('u0010')!.rfm_segment, 'Champions');
      assert.equal(valuesOf(hs).get('u0011')!.rfm_segment, 'At Risk');
      assert.equal(hs.records('contacts').length, 230);
    });
  });

  test('the daily limit hit mid-run defers the rest (run: deferred); the next day the rest goes through', async () => {
    await project.app(async (app) => {
      await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Promising'`);
      hs.nextDay();
      hs.setLimits({ daily: 2 });
      const run = await runMapping(app, 'seg-to-hubspot', { shared: new Map() });
      assert.equal(run.status, 'deferred', run.error);
      assert.equal(run.counts.delivered, 100, 'one upsert batch after the schema check');
      assert.equal(run.counts.deferred, 130);
      hs.nextDay();
      hs.setLimits({ daily: 1000 });
      const next = await runMapping(app, 'seg-to-hubspot', { shared: new Map() });
      assert.equal(next.status, 'succeeded', next.error);
      assert.equal(next.counts.delivered, 130);
      assert.ok([...valuesOf(hs).values()].every((v) => v.rfm_segment === 'Promising'));
      hs.setLimits({ daily: null });
    });
  });

  test('a ten-secondly storm during a run (another app fills the window): the engine retries the 429s, every record arrives', async () => {
    await project.app(async (app) => {
      await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Need Attention'`);
      hs.setLimits({ tenSecondly: 12, timeScale: 10 });
      await new Promise((r) => setTimeout(r, 1_100)); // an empty window to start from
      const limitedBefore = hs.count('POST', '/crm/v3/objects/contacts/batch/upsert', 429);
      // Right after segsync's schema check, a neighbour app uses the whole window.
      hs.onRequest = (r) => {
        if (r.method === 'GET') hs.consume(12);
      };
      const run = await runMapping(app, 'seg-to-hubspot', { shared: new Map() }).finally(() => { hs.onRequest = undefined; });
      assert.equal(run.status, 'succeeded', run.error);
      assert.deepEqual([run.counts.delivered, run.counts.failed], [230, 0]);
      assert.ok(hs.count('POST', '/crm/v3/objects/contacts/batch/upsert', 429) > limitedBefore, 'the storm happened');
      assert.ok([...valuesOf(hs).values()].every((v) => v.rfm_segment === 'Need Attention'));
      hs.setLimits({ tenSecondly: null, timeScale: 1 });
    });
  });
});

test('kill -9 in the middle of `segsync run`, then a rerun: HubSpot holds every contact exactly once with its final values', async () => {
  const hs = await startHubSpotEmulator({ faults: { slow: 1, slowMs: 120 } });
  const { db, project } = await projectFor(hs, 'batch_size: 10\nconcurrency: 1');
  try {
    await project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 200);
      await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Loyal Customers' WHERE user_id > 'u0150'`);
    });
    const setup = await project.cli(['setup', 'seg-to-hubspot', '--apply']);
    assert.equal(setup.code, 0, setup.stderr);
    const child = spawn(process.execPath, [CLI, 'run', 'seg-to-hubspot'], { cwd: project.dir, env: { ...process.env, SEGSYNC_LOG_LEVEL: 'error' }, stdio: 'ignore' });
    await waitFor('40 contacts', () => hs.records('contacts').length >= 40, 60_000, 10).finally(() => child.kill('SIGKILL'));
    await new Promise((r) => child.once('close', r));
    const atKill = hs.records('contacts').length;
    assert.ok(atKill >= 40 && atKill < 200, `killed mid-run with ${atKill} contacts in HubSpot`);
    hs.setFaults({ slow: 0 });
    await project.app(async (app) => {
      const next = await runMapping(app, 'seg-to-hubspot', { shared: new Map() });
      assert.equal(next.status, 'succeeded', next.error);
      const source = await app.warehouse.pool.query<{ user_id: string; rfm_segment: string }>('SELECT user_id, rfm_segment FROM segments');
      const held = hs.records('contacts');
      assert.equal(held.length, 200);
      assert.equal(new Set(held.map((r) => r.properties.user_id)).size, 200);
      const values = valuesOf(hs);
      for (const s of source.rows) assert.equal(values.get(s.user_id)?.rfm_segment, s.rfm_segment, s.user_id);
      const verify = await reconcileMapping(app, 'seg-to-hubspot', { all: true });
      assert.equal(verify.counts.verified, 200);
    });
  } finally {
    await hs.close();
    await project.cleanup();
    await db.drop();
  }
});
