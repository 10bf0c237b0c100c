import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { getSigningKey } from '../src/audit/keys.ts';
import { verifyTrail } from '../src/audit/verify.ts';
import { forget, retryPending } from '../src/erasure/forget.ts';
import { cliActor } from '../src/state/actor.ts';
import { runMapping } from '../src/sync/run.ts';
import { startCdpEmulator, type CdpEmulator } from './emulators/cdp/server.ts';
import { startHubSpotEmulator, type HubSpotEmulator } from './emulators/hubspot/server.ts';
import { startWebhookEmulator, type WebhookEmulator } from './emulators/webhook/server.ts';
import { prepareContacts } from './helpers/hubspot.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';
import { createProject, type TestProject } from './helpers/project.ts';

const ALICE = 'alice@example.com';
const SECRET = 'erasure-test-webhook-secret-0123456789';

let hs: HubSpotEmulator;
let hook: WebhookEmulator;
let seg: CdpEmulator;
let rud: CdpEmulator;
let db: TestDatabase;
let project: TestProject;

const mapping = (name: string, connection: string, object: string, matchKey: string, fields: string) => `name: ${name}
source:
  model: people
  key: email
  key_pii: email
destination:
  connection: ${connection}
  object: ${object}
  match_key: ${matchKey}
fields:
${fields}
`;

before(async () => {
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) delete process.env[k];
  process.env.SEGSYNC_PSEUDONYM_KEY = 'erasure-test-pseudonym-key-000';
  hs = await startHubSpotEmulator({ shuffleResults: false });
  prepareContacts(hs);
  hook = await startWebhookEmulator({ secret: SECRET });
  seg = await startCdpEmulator({ flavour: 'segment' });
  rud = await startCdpEmulator({ flavour: 'rudderstack' });
  db = await createTestDatabase();
  process.env.ERASE_HS_TOKEN = hs.token;
  process.env.ERASE_HOOK_SECRET = SECRET;
  process.env.ERASE_SEG_TOKEN = seg.regulationToken;
  process.env.ERASE_RUD_TOKEN = 'wrong-token-first';
  process.env.ERASE_SEG_WRITE_KEY = seg.writeKey;
  process.env.ERASE_RUD_WRITE_KEY = rud.writeKey;
  project = await createProject({ url: db.url, settings: `warehouse:
  url: ${db.url}
connections:
  hubspot:
    type: hubspot
    access_token: \${ERASE_HS_TOKEN}
    base_url: ${hs.url}
  hook:
    type: webhook
    url: ${hook.url}/segsync
    secret: \${ERASE_HOOK_SECRET}
  segment:
    type: segment
    write_key: \${ERASE_SEG_WRITE_KEY}
    base_url: ${seg.url}
  rudder:
    type: rudderstack
    write_key: \${ERASE_RUD_WRITE_KEY}
    base_url: ${rud.url}
  files:
    type: file
    directory: OUT
privacy:
  erasure:
    segment:
      api_url: ${seg.url}
      token: \${ERASE_SEG_TOKEN}
    rudder:
      api_url: ${rud.url}
      token: \${ERASE_RUD_TOKEN}
` });
  const settingsFile = path.join(project.dir, 'config/segsync.yaml');
  await project.write('config/segsync.yaml', (await readFile(settingsFile, 'utf8')).replace('OUT', project.outDir));
  await project.write('mappings/hs.yaml', mapping('to-hubspot', 'hubspot', 'contacts', 'user_id', '  - { to: rfm_segment, from: segment }'));
  await project.write('mappings/hook.yaml', mapping('to-hook', 'hook', 'customers', 'email', '  - { to: segment, from: segment }'));
  await project.write('mappings/seg.yaml', mapping('to-segment', 'segment', 'identify', 'userId', '  - { to: rfm_segment, from: segment }'));
  await project.write('mappings/rud.yaml', mapping('to-rudder', 'rudder', 'identify', 'userId', '  - { to: rfm_segment, from: segment }'));
  await project.write('mappings/files.yaml', mapping('to-files', 'files', 'customers', 'email', '  - { to: segment, from: segment }'));
});

after(async () => {
  await project?.cleanup();
  await db?.drop();
  await Promise.all([hs?.close(), hook?.close(), seg?.close(), rud?.close()]);
});

const NAMES = ['to-hubspot', 'to-hook', 'to-segment', 'to-rudder', 'to-files'];

test('forget erases a person in every destination, suppresses them from later runs, nulls their payloads and keeps the chain', async () => {
  await project.app(async (app) => {
    const pool = app.warehouse.pool;
    await pool.query(`CREATE TABLE people (email text, segment text)`);
    await pool.query(`INSERT INTO people VALUES ($1, 'Champions'), ('bob@example.com', 'At Risk')`, [ALICE]);
    for (const n of NAMES) assert.equal((await runMapping(app, n)).status, 'succeeded', n);
    assert.ok(hs.find('contacts', 'user_id', ALICE));
    assert.ok(hook.receiver.records.has(ALICE));
    assert.ok(seg.profile(ALICE));

    const r = await forget(app, ALICE, { reason: 'DSR-2024-17', actor: cliActor() });
    const byMapping = Object.fromEntries(r.steps.map((s) => [s.mapping, s]));
    assert.deepEqual(Object.fromEntries(r.steps.map((s) => [s.mapping, s.status])), { 'to-files': 'done', 'to-hook': 'done', 'to-hubspot': 'done', 'to-rudder': 'failed', 'to-segment': 'done' });
    assert.equal(r.done, false, 'RudderStack refused the token: the erasure stays open');
    // HubSpot: a GDPR delete by the contact id segsync kept; the contact is gone for good.
    assert.equal(hs.find('contacts', 'user_id', ALICE), undefined);
    assert.equal(hs.crm.purged.length, 1);
    assert.equal(hs.count('POST', '/crm/v3/objects/contacts/gdpr-delete', 204), 1);
    assert.match(byMapping['to-hubspot']!.requestId ?? '', /^[0-9a-f-]{36}$/);
    // Webhook: a signed erase event; the receiver deleted the record.
    assert.deepEqual(hook.receiver.erased, [ALICE]);
    assert.ok(!hook.receiver.records.has(ALICE));
    // Segment: a SUPPRESS_WITH_DELETE regulation for the userId; its regulateId is the request id.
    assert.deepEqual(seg.regulations.map((x) => [x.type, x.userIds]), [['SUPPRESS_WITH_DELETE', [ALICE]]]);
    assert.equal(byMapping['to-segment']!.requestId, seg.regulations[0]!.id);
    assert.equal(seg.profile(ALICE), undefined);
    // File exports: a tombstone.
    const tomb = (await readFile(path.join(project.outDir, 'to-files', 'tombstones.ndjson'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(tomb.map((t) => [t.type, t.email, t.erasure_id]), [['tombstone', ALICE, r.erasureId]]);
    assert.match(byMapping['to-rudder']!.detail ?? '', /401/);

    // The ledger: payloads nulled, hashes kept; suppressed.
    const state = (await pool.query(`SELECT mapping, payload, payload_hash FROM segsync.delivered WHERE key = $1`, [ALICE])).rows;
    assert.equal(state.length, 5);
    assert.ok(state.every((s) => s.payload === null && s.payload_hash));
    assert.equal((await pool.query(`SELECT count(*)::int AS n FROM segsync.run_items WHERE key = $1 AND (after IS NOT NULL OR before IS NOT NULL)`, [ALICE])).rows[0].n, 0);
    const pending = (await pool.query(`SELECT kind, severity, message FROM segsync.events WHERE kind = 'erasure_pending'`)).rows;
    assert.equal(pending.length, 1);
    assert.match(pending[0].message, /to-rudder/);

    // The RudderStack token fixed: --pending finishes it (only the failed step is tried again).
    app.config.settings.privacy.erasure.rudder!.token = rud.regulationToken;
    const again = await retryPending(app, cliActor());
    assert.deepEqual(again, [{ erasureId: r.erasureId, done: true, overdue: false }]);
    assert.deepEqual(rud.regulations.map((x) => [x.type, x.userIds]), [['suppress_with_delete', [ALICE]]]);
    assert.equal(seg.regulations.length, 1, 'Segment is not asked twice');
    assert.equal((await pool.query(`SELECT status FROM segsync.erasures WHERE id = $1`, [r.erasureId])).rows[0].status, 'done');

    // Later runs never send her again, even when her segment changes; bob goes on.
    await pool.query(`UPDATE people SET segment = 'Hibernating'`);
    const eventsBefore = seg.identifies(ALICE).length;
    for (const n of NAMES) await runMapping(app, n);
    assert.equal(hs.find('contacts', 'user_id', ALICE), undefined, 'not recreated in HubSpot');
    assert.equal(hs.find('contacts', 'user_id', 'bob@example.com')?.properties.rfm_segment, 'Hibernating');
    assert.ok(!hook.receiver.records.has(ALICE));
    assert.equal(seg.identifies(ALICE).length, eventsBefore);
    const planned = (await pool.query(`SELECT count(*)::int AS n FROM segsync.run_items i JOIN segsync.runs r ON r.id = i.run_id WHERE i.key = $1 AND r.started_at > (SELECT requested_at FROM segsync.erasures WHERE id = $2)`, [ALICE, r.erasureId])).rows[0].n;
    assert.equal(planned, 0);

    // The audit trail still verifies and names her only by pseudonym.
    const report = await verifyTrail(pool, 'segsync', { publicKey: getSigningKey().publicKey });
    assert.deepEqual(report.problems, []);
    const trail = (await pool.query<{ action: string; entry: string }>(`SELECT action, entry FROM segsync.audit ORDER BY seq`)).rows;
    assert.ok(trail.some((t) => t.action === 'person.forgotten'));
    assert.ok(trail.every((t) => !t.entry.includes(ALICE)), 'no address in the trail');
    const requested = JSON.parse(trail.find((t) => t.action === 'person.erasure_requested')!.entry);
    assert.equal(requested.details.key, r.pseudonym);
  });
});

test('forget without a reason is a usage error and erases nothing', async () => {
  const out = await project.cli(['forget', 'bob@example.com']);
  assert.equal(out.code, 2);
  assert.match(out.stderr, /--reason/);
  assert.ok(hs.find('contacts', 'user_id', 'bob@example.com'));
});

test('the daemon\'s erasure job retries open erasures and raises erasure_overdue past the SLA', async () => {
  const { erasureJob } = await import('../src/daemon/erasure-job.ts');
  await project.app(async (app) => {
    const pool = app.warehouse.pool;
    const r = await forget(app, 'bob@example.com', { reason: 'DSR-2024-18', actor: cliActor() });
    assert.equal(r.done, false, 'RudderStack still refuses the token from the environment');
    await pool.query(`UPDATE segsync.erasures SET due_at = now() - interval '1 day' WHERE id = $1`, [r.erasureId]);
    const job = erasureJob({ app, signal: new AbortController().signal } as never);
    assert.equal(job.schedule, '0 * * * *');
    await job.run('schedule');
    const overdue = (await pool.query(`SELECT severity, message FROM segsync.events WHERE kind = 'erasure_overdue'`)).rows;
    assert.equal(overdue.length, 1);
    assert.equal(overdue[0].severity, 'critical');
    assert.match(overdue[0].message, new RegExp(`erasure ${r.erasureId} is past its due date .* to-rudder`));
    assert.ok(!overdue[0].message.includes('bob@example.com'));
  });
});
