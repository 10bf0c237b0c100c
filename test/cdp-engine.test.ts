import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runMapping } from '../src/sync/run.ts';
import { reconcileMapping } from '../src/sync/reconcile.ts';
import { startCdpEmulator, type CdpEmulator } from './emulators/cdp/server.ts';
import { FLAVOURS } from './helpers/cdp.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, seedSegments, type TestProject } from './helpers/project.ts';

/** The Segment and RudderStack destinations driven by the sync engine, end to end over real HTTP. */

const ENV = { segment: ['SEGMENT_WRITE_KEY', 'SEGMENT_BASE_URL'], rudderstack: ['RUDDERSTACK_WRITE_KEY', 'RUDDERSTACK_DATA_PLANE_URL'] } as const;

for (const flavour of FLAVOURS) {
  describe(`${flavour} through the sync engine`, () => {
    let emu: CdpEmulator;
    let db: TestDatabase;
    let project: TestProject;
    const name = `seg-to-${flavour}`;
    const [keyEnv, urlEnv] = ENV[flavour];

    before(async () => {
      emu = await startCdpEmulator({ flavour });
      db = await createTestDatabase();
      // The write key and URL come from the environment through ${ENV} in the connection block, as documented.
      process.env[keyEnv] = emu.writeKey;
      process.env[urlEnv] = emu.url;
      project = await createProject({ url: db.url, settings: `warehouse:\n  url: ${db.url}\nconnections:\n  cdp:\n    type: ${flavour}\n    write_key: \${${keyEnv}}\n    base_url: \${${urlEnv}}\n` });
      await project.write('mappings/m.yaml', `name: ${name}
source: { model: segments, key: user_id }
destination:
  connection: cdp
  object: identify
  match_key: userId
  options: { removal: both, removal_event: Segment Exited }
fields:
  - { to: rfm_segment, from: rfm_segment }
  - { to: rfm_recency_score, from: recency_score }
on_removed: clear
`);
    });
    after(async () => {
      delete process.env[keyEnv];
      delete process.env[urlEnv];
      await project.cleanup();
      await db.drop();
      await emu.close();
    });

    test('first run sends one identify per user; a rerun sends nothing', async () => {
      await project.app(async (app) => {
        await seedSegments(app.warehouse.pool, 20);
        const first = await runMapping(app, name);
        assert.equal(first.status, 'succeeded', first.error);
        assert.equal(first.counts.delivered, 20);
        assert.equal(emu.kept.length, 20);
        assert.deepEqual(emu.profile('u0002'), { rfm_segment: 'Champions', rfm_recency_score: 2 });
        const receipts = await app.warehouse.pool.query(`SELECT request_id, destination_id FROM segsync.receipts WHERE run_id = $1 AND key = 'u0002'`, [first.runId]);
        assert.equal(receipts.rows[0].request_id, emu.requests.find((r) => r.events > 0)?.requestId, 'the HTTP receipt is kept');
        assert.equal(receipts.rows[0].destination_id, emu.identifies('u0002')[0]?.messageId);

        const dataRequests = () => emu.requests.filter((r) => r.events > 0).length;
        const requests = dataRequests();
        const second = await runMapping(app, name);
        assert.equal(second.status, 'succeeded');
        assert.equal(second.counts.unchanged, 20);
        assert.equal(dataRequests(), requests, 'the rerun sent no events (only the empty check batch)');
      });
    });

    test('a 5xx after ingestion is retried by the engine and deduplicated; removals send cleared traits and the track event', async () => {
      await project.app(async (app) => {
        const pool = app.warehouse.pool;
        await pool.query(`UPDATE segments SET rfm_segment = 'Hibernating' WHERE user_id IN ('u0001', 'u0003')`);
        await pool.query(`DELETE FROM segments WHERE user_id = 'u0020'`);
        emu.faults.queue({ kind: 'status', status: 503, phase: 'after' }, { kind: 'status', status: 429, retryAfterSec: 1 });
        const started = Date.now();
        const run = await runMapping(app, name);
        assert.equal(run.status, 'succeeded', run.error);
        assert.deepEqual([run.counts.update, run.counts.remove, run.counts.delivered, run.counts.failed], [2, 1, 3, 0]);
        assert.ok(Date.now() - started >= 1000, 'Retry-After: 1 was waited out');
        assert.equal(emu.duplicatesReceived(), 4, 'the first attempt landed, and its resend was dropped by messageId');
        assert.equal(emu.identifies('u0001').length, 2, 'create + one update, not three');
        assert.equal(emu.profile('u0001')?.rfm_segment, 'Hibernating');
        assert.deepEqual(emu.profile('u0020'), { rfm_segment: null, rfm_recency_score: null });
        assert.deepEqual(emu.tracks('u0020', 'Segment Exited')[0]?.properties, { rfm_segment: 'Champions', rfm_recency_score: 5 });
      });
    });

    test('a user moving back to an earlier segment is delivered (the messageId chains on the last delivery)', async () => {
      await project.app(async (app) => {
        await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Champions' WHERE user_id = 'u0001'`);
        await runMapping(app, name);
        await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Hibernating' WHERE user_id = 'u0001'`);
        const run = await runMapping(app, name);
        assert.equal(run.counts.delivered, 1);
        assert.equal(emu.identifies('u0001').length, 4);
        assert.equal(emu.profile('u0001')?.rfm_segment, 'Hibernating');
      });
    });

    test('reconcile marks every delivered record unverifiable', async () => {
      await project.app(async (app) => {
        const r = await reconcileMapping(app, name, { all: true });
        assert.deepEqual(r.counts, { verified: 0, drifted: 0, missing: 0, unverifiable: 19 });
        const { rows } = await app.warehouse.pool.query(`SELECT detail FROM segsync.reconciliations WHERE mapping = $1 AND key = 'u0002' ORDER BY 1 LIMIT 1`, [name]);
        assert.match(rows[0].detail, /no API to read traits back.*messageId segsync-/);
      });
    });
  });
}
