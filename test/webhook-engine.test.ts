import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runMapping } from '../src/sync/run.ts';
import { reconcileMapping } from '../src/sync/reconcile.ts';
import { startWebhookEmulator, type WebhookEmulator } from './emulators/webhook/server.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, seedSegments, type TestProject } from './helpers/project.ts';

/** The webhook destination driven by the sync engine into the sample receiver, end to end. */

const SECRET = 'e2e-secret-0123456789abcdef';

describe('webhook through the sync engine', () => {
  let emu: WebhookEmulator;
  let db: TestDatabase;
  let project: TestProject;

  before(async () => {
    // A gateway in front of the receiver replays any answer stored under an Idempotency-Key; u0011 is refused
    // as retryable on its first try only.
    let u0011Tries = 0;
    emu = await startWebhookEmulator({
      secret: SECRET,
      gatewayCache: true,
      validate: (c) => (c.key === 'u0007' ? 'u0007 is locked in the CRM' : c.key === 'u0011' && ++u0011Tries === 1 ? { error: 'u0011 busy', retryable: true } : undefined),
    });
    db = await createTestDatabase();
    process.env.TEST_WEBHOOK_SECRET = SECRET;
    project = await createProject({ url: db.url, settings: `warehouse:\n  url: ${db.url}\nconnections:
  hook:
    type: webhook
    url: ${emu.url}/segsync
    secret: \${TEST_WEBHOOK_SECRET}
    read_back_url: ${emu.url}/read
  hook-blind:
    type: webhook
    url: ${emu.url}/segsync
    secret: \${TEST_WEBHOOK_SECRET}
` });
    const mapping = (name: string, conn: string) => `name: ${name}
source: { model: segments, key: user_id }
destination: { connection: ${conn}, object: customers, match_key: customer_id }
fields:
  - { to: rfm_segment, from: rfm_segment }
  - { to: monetary, from: monetary, transform: number }
on_removed: clear
dead_after: 3
`;
    await project.write('mappings/hook.yaml', mapping('seg-to-hook', 'hook'));
    await project.write('mappings/blind.yaml', mapping('seg-to-blind', 'hook-blind'));
  });
  after(async () => {
    delete process.env.TEST_WEBHOOK_SECRET;
    await project.cleanup();
    await db.drop();
    await emu.close();
  });

  test('a run delivers signed batches, the receiver\'s per-record error fails only that record, a rerun sends nothing', async () => {
    await project.app(async (app) => {
      await seedSegments(app.warehouse.pool, 12);
      const first = await runMapping(app, 'seg-to-hook');
      assert.equal(first.status, 'partial');
      assert.deepEqual([first.counts.delivered, first.counts.failed], [11, 1]);
      assert.equal(emu.receiver.records.get('u0002')?.rfm_segment, 'Champions');
      const { rows } = await app.warehouse.pool.query(`SELECT status, error_code, error_message FROM segsync.receipts WHERE run_id = $1 AND key = 'u0007'`, [first.runId]);
      assert.deepEqual(rows[0], { status: 'failed', error_code: 'WEBHOOK_RECORD_ERROR', error_message: 'u0007 is locked in the CRM' });
      const body = JSON.parse(emu.requests.filter((r) => r.body.includes('"u0001"')).at(-1)?.body ?? '{}');
      assert.equal(body.run, first.runId, 'the body names the run');
      // u0011, refused as retryable, was resent by the engine as a new attempt: a new change id, a new key,
      // not answered from the gateway's cache of the refusal.
      const u0011 = emu.requests.filter((r) => r.body.includes('"u0011"'));
      assert.equal(u0011.length, 2);
      const idOf = (r: { body: string }) => (JSON.parse(r.body).changes as Array<{ key: string; id: string }>).find((c) => c.key === 'u0011')?.id;
      assert.notEqual(idOf(u0011[0]!), idOf(u0011[1]!));
      assert.equal(emu.replayedFromCache, 0);
      assert.equal(emu.receiver.records.get('u0011')?.rfm_segment !== undefined, true);

      const posts = emu.requests.length;
      const second = await runMapping(app, 'seg-to-hook');
      assert.equal(second.counts.delivered, 0);
      const sentAgain = emu.requests.slice(posts).flatMap((r) => JSON.parse(r.body).changes ?? []).map((c: { key: string }) => c.key);
      assert.deepEqual(sentAgain, ['u0007'], 'only the failed record is tried again');
    });
  });

  test('reconcile reads back through read_back_url (verified, drifted) and is unverifiable without one', async () => {
    await project.app(async (app) => {
      emu.receiver.records.set('u0003', { rfm_segment: 'Edited by hand', monetary: 21 });
      const r = await reconcileMapping(app, 'seg-to-hook', { all: true });
      assert.deepEqual(r.counts, { verified: 10, drifted: 1, missing: 0, unverifiable: 0 });
      assert.deepEqual(r.examples.find((e) => e.status === 'drifted'), { key: 'u0003', status: 'drifted', driftedFields: ['rfm_segment'] });

      await runMapping(app, 'seg-to-blind');
      const blind = await reconcileMapping(app, 'seg-to-blind', { all: true });
      assert.equal(blind.counts.unverifiable, 11);
    });
  });

  test('a 503 storm is retried by the engine with one Idempotency-Key', async () => {
    await project.app(async (app) => {
      await app.warehouse.pool.query(`UPDATE segments SET rfm_segment = 'Lost' WHERE user_id = 'u0001'`);
      const before = emu.requests.length;
      emu.faults.queue({ kind: 'status', status: 503 }, { kind: 'reset' });
      const run = await runMapping(app, 'seg-to-blind');
      // u0007 is still refused by the receiver; u0001's update goes through after the 503 and the reset.
      assert.deepEqual([run.status, run.counts.delivered, run.counts.failed], ['partial', 1, 1], run.error);
      const posts = emu.requests.slice(before).filter((r) => r.body.includes('"u0001"'));
      assert.equal(posts.length, 3);
      assert.equal(new Set(posts.map((p) => p.headers['idempotency-key'])).size, 1);
      assert.equal(emu.receiver.records.get('u0001')?.rfm_segment, 'Lost');
    });
  });
});
