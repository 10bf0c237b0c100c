import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { AlertDispatcher } from '../src/alerts/dispatcher.ts';
import { createToken } from '../src/auth/tokens.ts';
import type { Role } from '../src/auth/permissions.ts';
import { cliActor } from '../src/state/actor.ts';
import { insertEvent } from '../src/state/events.ts';
import { controlPlaneFixture, MAPPING, TOKEN, type ControlPlaneFixture } from './helpers/control-plane.ts';

/**
 * The control routes (issues 13, 14, 17) on real data from real runs, each answer validated against the OpenAPI
 * document: erasure, the audit trail and its verifier, alerts and silences, tokens, the unmasked record view.
 * Every mutation is checked in the audit trail with the caller's identity as actor.
 */

let f: ControlPlaneFixture;
let schema: string;
let doc: { paths: Record<string, Record<string, { 'x-permission': string; responses: Record<string, { content?: { 'application/json': { schema: object } } }> }>> };
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const validators = new Map<string, ReturnType<typeof ajv.compile>>();
const tokens = new Map<Role, string>();
let key: string;

before(async () => {
  f = await controlPlaneFixture();
  schema = f.app.config.settings.state.schema;
  doc = (await call('GET', '/api/v1/openapi.json')).json as typeof doc;
  for (const role of ['viewer', 'operator', 'auditor', 'admin'] as Role[]) {
    tokens.set(role, (await createToken(f.app.warehouse.pool, schema, { role, name: `control-${role}`, expiresAt: null, actor: cliActor() })).token);
  }
  const [k] = await f.q<{ key: string }>(`SELECT key FROM ${schema}.run_items WHERE run_id = $1 ORDER BY key LIMIT 1`, [f.runs[0]!.runId]);
  key = k!.key;
});
after(async () => {
  await f?.close();
});

async function call(method: string, path: string, o: { body?: unknown; token?: string } = {}): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${o.token ?? TOKEN}` };
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(f.url + path, { method, headers, ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

function template(path: string): string {
  const p = path.split('?')[0]!;
  const t = Object.keys(doc.paths).find((k) => new RegExp(`^${k.replace(/\{\w+\}/g, '[^/]+')}$`).test(p));
  assert.ok(t, `the OpenAPI document has no route for ${p}`);
  return t;
}

/** Calls the API and validates the answer against the document's schema for that route and status. */
async function checked(method: string, path: string, status: number, o: { body?: unknown; token?: string } = {}) {
  const r = await call(method, path, o);
  assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.json)}`);
  const t = template(path);
  const op = doc.paths[t]![method.toLowerCase()];
  assert.ok(op, `${method} ${t} is not in the document`);
  const s = op.responses[String(status)]?.content?.['application/json'].schema;
  assert.ok(s, `${method} ${t} declares no ${status} response`);
  const k = `${method} ${t} ${status}`;
  let v = validators.get(k);
  if (!v) validators.set(k, (v = ajv.compile(s)));
  assert.ok(v(r.json), `${k} does not match the document: ${ajv.errorsText(v.errors)}\n${JSON.stringify(r.json).slice(0, 500)}`);
  return r.json;
}

const auditRows = (action: string) => f.q<{ actor_type: string; actor_id: string; subject: string | null; entry: string }>(
  `SELECT actor_type, actor_id, subject, entry FROM ${schema}.audit WHERE action = $1 ORDER BY seq`, [action]);
const pending = async () => { await call('GET', '/api/v1/audit?limit=1'); }; // seals committed actions into the chain

describe('the control routes', () => {
  test('each is in the OpenAPI document with the permission it declares', () => {
    const want: Array<[string, string, string]> = [
      ['/api/v1/forget', 'post', 'erase'], ['/api/v1/audit', 'get', 'audit'], ['/api/v1/audit/verify', 'get', 'audit'], ['/api/v1/alerts', 'get', 'read'],
      ['/api/v1/silences', 'get', 'read'], ['/api/v1/silences', 'post', 'silence'], ['/api/v1/silences/{id}/expire', 'post', 'silence'],
      ['/api/v1/tokens', 'get', 'admin'], ['/api/v1/tokens', 'post', 'admin'], ['/api/v1/tokens/{id}/revoke', 'post', 'admin'],
    ];
    for (const [p, m, perm] of want) assert.equal(doc.paths[p]?.[m]?.['x-permission'], perm, `${m.toUpperCase()} ${p}`);
  });

  test('POST /forget: 400 without a reason, 404 for an unknown mapping, 403 without erase; else erased per destination with request ids, audited as the caller', async () => {
    const noReason = await checked('POST', '/api/v1/forget', 400, { body: { key } });
    assert.equal(noReason.error.code, 'BAD_REQUEST');
    assert.match(noReason.error.message, /reason/);
    const blank = await checked('POST', '/api/v1/forget', 400, { body: { key, reason: '   ' } });
    assert.match(blank.error.message, /reason/);
    const unknown = await checked('POST', '/api/v1/forget', 404, { body: { key, mapping: 'no-such-mapping', reason: 'DSR-1' } });
    assert.equal(unknown.error.code, 'NOT_FOUND');
    const operator = await call('POST', '/api/v1/forget', { token: tokens.get('operator')!, body: { key, reason: 'DSR-1' } });
    assert.deepEqual([operator.status, operator.json.error.code], [403, 'FORBIDDEN']);
    assert.equal((await f.q(`SELECT 1 FROM ${schema}.erasures`)).length, 0, 'nothing was erased by the refused calls');

    const r = await checked('POST', '/api/v1/forget', 200, { body: { key, mapping: MAPPING, reason: 'DSR-2026-001' } });
    assert.equal(r.done, true, JSON.stringify(r));
    assert.deepEqual(r.steps.map((s: { mapping: string; status: string; requestId: string }) => [s.mapping, s.status, s.requestId]), [[MAPPING, 'done', `tombstone-${r.erasureId}`]], 'the file destination\'s tombstone, with its request id');
    assert.equal((await f.q(`SELECT 1 FROM ${schema}.suppressions`)).length, 1, 'suppressed from every future run');
    assert.ok(r.nulled > 0, 'the ledger\'s payloads of the key were nulled');
    const [e] = await f.q<{ requested_by: string }>(`SELECT requested_by FROM ${schema}.erasures WHERE id = $1`, [r.erasureId]);
    assert.equal(e!.requested_by, 'api:admin-token');
    await pending();
    const rows = await auditRows('person.erasure_requested');
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0]!.actor_type, rows[0]!.actor_id, rows[0]!.subject], ['api', 'admin-token', `erasure:${r.erasureId}`]);
    assert.ok(!rows[0]!.entry.includes(`"${key}"`), 'the key is kept as a pseudonym in the trail');
  });

  test('GET /audit: newest first, cursor-paged, filtered by action prefix and subject; only with audit', async () => {
    const all = await checked('GET', '/api/v1/audit?limit=500', 200, { token: tokens.get('auditor')! });
    const seqs = all.rows.map((r: { seq: number }) => r.seq);
    assert.ok(seqs.length >= 5, `rows: ${seqs.length}`);
    assert.deepEqual(seqs, [...seqs].sort((a: number, b: number) => b - a), 'newest first');
    const paged: number[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await checked('GET', `/api/v1/audit?limit=2${cursor ? `&cursor=${cursor}` : ''}`, 200, { token: tokens.get('auditor')! });
      assert.ok(page.rows.length <= 2);
      paged.push(...page.rows.map((r: { seq: number }) => r.seq));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(paged, seqs, 'the pages are the whole trail, each row once');
    const tokensOnly = await checked('GET', '/api/v1/audit?action=token.', 200);
    assert.ok(tokensOnly.rows.length >= 4 && tokensOnly.rows.every((r: { action: string }) => r.action.startsWith('token.')), JSON.stringify(tokensOnly.rows.map((r: { action: string }) => r.action)));
    const subject = tokensOnly.rows[0].subject as string;
    const one = await checked('GET', `/api/v1/audit?subject=${encodeURIComponent(subject)}`, 200);
    assert.ok(one.rows.length >= 1 && one.rows.every((r: { subject: string }) => r.subject === subject));
    const bad = await checked('GET', '/api/v1/audit?cursor=nope', 400);
    assert.equal(bad.error.code, 'BAD_CURSOR');
    const unknownParam = await checked('GET', '/api/v1/audit?actor=x', 400);
    assert.equal(unknownParam.error.code, 'BAD_REQUEST');
    const viewer = await call('GET', '/api/v1/audit', { token: tokens.get('viewer')! });
    assert.deepEqual([viewer.status, viewer.json.error.code], [403, 'FORBIDDEN']);
  });

  test('silences: bad matcher or duration is a 400 with a code; added and expired as the caller, audited; 404 for one not in force', async () => {
    const op = tokens.get('operator')!;
    const badMatcher = await checked('POST', '/api/v1/silences', 400, { token: op, body: { matchers: ['colour=blue'], for: '2h', comment: 'x' } });
    assert.equal(badMatcher.error.code, 'BAD_MATCHER');
    assert.match(badMatcher.error.message, /unknown label 'colour'/);
    const badRegex = await checked('POST', '/api/v1/silences', 400, { token: op, body: { matchers: ['kind=~run_('], for: '2h', comment: 'x' } });
    assert.equal(badRegex.error.code, 'BAD_MATCHER');
    const none = await checked('POST', '/api/v1/silences', 400, { token: op, body: { matchers: [], for: '2h', comment: 'x' } });
    assert.equal(none.error.code, 'BAD_MATCHER');
    const badFor = await checked('POST', '/api/v1/silences', 400, { token: op, body: { matchers: [`mapping=${MAPPING}`], for: 'two hours', comment: 'x' } });
    assert.equal(badFor.error.code, 'BAD_DURATION');
    const noComment = await checked('POST', '/api/v1/silences', 400, { token: op, body: { matchers: [`mapping=${MAPPING}`], for: '2h', comment: ' ' } });
    assert.equal(noComment.error.code, 'BAD_COMMENT');
    assert.equal((await f.q(`SELECT 1 FROM ${schema}.alert_silences`)).length, 0, 'no refused silence was made');
    const viewer = await call('POST', '/api/v1/silences', { token: tokens.get('viewer')!, body: { matchers: [`mapping=${MAPPING}`], for: '2h', comment: 'x' } });
    assert.deepEqual([viewer.status, viewer.json.error.code], [403, 'FORBIDDEN']);

    const s = await checked('POST', '/api/v1/silences', 201, { token: op, body: { matchers: [`mapping=${MAPPING}`, 'kind=~run_.*'], for: '2h', comment: 'CRM maintenance' } });
    assert.match(s.author, /^api:token:ssk_[0-9A-Za-z]{8}:control-operator$/, 'the author is the operator token\'s identity');
    assert.ok(Math.abs(new Date(s.endsAt).getTime() - Date.now() - 7_200_000) < 60_000, `ends ${s.endsAt}`);
    const listed = await checked('GET', '/api/v1/silences', 200, { token: tokens.get('viewer')! });
    assert.deepEqual(listed.silences.map((x: { id: number }) => x.id), [s.id]);
    const expired = await checked('POST', `/api/v1/silences/${s.id}/expire`, 200, { token: op });
    assert.ok(expired.expiredAt);
    assert.equal(expired.expiredBy, s.author);
    assert.equal((await checked('GET', '/api/v1/silences', 200)).silences.length, 0, 'no silence in force');
    assert.equal((await checked('GET', '/api/v1/silences?all=1', 200)).silences.length, 1);
    const again = await checked('POST', `/api/v1/silences/${s.id}/expire`, 404, { token: op });
    assert.equal(again.error.code, 'NOT_FOUND');
    await pending();
    const added = await auditRows('silence.added');
    const ended = await auditRows('silence.expired');
    assert.deepEqual(added.map((r) => [r.actor_type, r.subject]), [[added[0]!.actor_type, `silence:${s.id}`]]);
    assert.equal(`${added[0]!.actor_type}:${added[0]!.actor_id}`, s.author, 'the author is the caller\'s identity');
    assert.deepEqual(ended.map((r) => `${r.actor_type}:${r.actor_id}`), [s.author]);
    assert.notEqual(s.author, 'api:admin-token');
  });

  test('GET /alerts: open incidents with their delivery state, messages masked', async () => {
    const empty = await checked('GET', '/api/v1/alerts', 200, { token: tokens.get('viewer')! });
    assert.deepEqual(empty.incidents, [], 'no incident before the dispatcher folded the events');
    await insertEvent(f.app.warehouse.pool, schema, { kind: 'run_failed', severity: 'error', mapping: MAPPING, message: `${MAPPING} failed: alice.smith@example.com was refused` });
    const dispatcher = new AlertDispatcher({ pool: f.app.warehouse.pool, schema, config: () => f.app.config, log: f.app.log });
    await dispatcher.tick();
    await dispatcher.settle();
    const r = await checked('GET', '/api/v1/alerts', 200, { token: tokens.get('viewer')! });
    const failed = r.incidents.filter((i: { kind: string }) => i.kind === 'run_failed');
    assert.equal(failed.length, 1, JSON.stringify(r));
    assert.deepEqual([failed[0].mapping, failed[0].state, failed[0].events, failed[0].deliveries], [MAPPING, 'firing', 1, []]);
    assert.ok(r.incidents.some((i: { kind: string; lastRunId: number }) => i.kind === 'run_held' && i.lastRunId === f.held.runId), 'the fixture\'s held run is an incident too');
    assert.ok(!JSON.stringify(r).includes('alice.smith@example.com'), 'the address is masked');
    const bad = await checked('GET', '/api/v1/alerts?recent=forever', 400);
    assert.equal(bad.error.code, 'BAD_REQUEST');
  });

  test('tokens: made (shown once), listed without the token, revoked; audited as the caller; admin only; bad role or expiry is a 400', async () => {
    const op = await call('GET', '/api/v1/tokens', { token: tokens.get('operator')! });
    assert.deepEqual([op.status, op.json.error.code], [403, 'FORBIDDEN']);
    const badRole = await checked('POST', '/api/v1/tokens', 400, { body: { name: 'ci', role: 'superuser' } });
    assert.equal(badRole.error.code, 'BAD_ROLE');
    assert.match(badRole.error.message, /viewer/);
    const badExpiry = await checked('POST', '/api/v1/tokens', 400, { body: { name: 'ci', role: 'viewer', expires: 'soon' } });
    assert.equal(badExpiry.error.code, 'BAD_EXPIRY');
    const noName = await checked('POST', '/api/v1/tokens', 400, { body: { name: '', role: 'viewer' } });
    assert.equal(noName.error.code, 'BAD_REQUEST');

    const made = await checked('POST', '/api/v1/tokens', 201, { token: tokens.get('admin')!, body: { name: 'ci-reader', role: 'viewer', expires: '30d' } });
    assert.match(made.token, /^ssk_[0-9A-Za-z]{46}$/);
    assert.equal(made.row.role, 'viewer');
    assert.match(made.row.createdBy, /^api:token:ssk_[0-9A-Za-z]{8}:control-admin$/, 'made by the admin token\'s identity');
    assert.equal((await call('GET', '/api/v1/mappings', { token: made.token })).status, 200, 'the new token works');
    const listed = await checked('GET', '/api/v1/tokens', 200);
    const row = listed.tokens.find((t: { id: string }) => t.id === made.row.id);
    assert.ok(row && !JSON.stringify(listed).includes(made.token), 'listed, never the token itself');
    const revoked = await checked('POST', `/api/v1/tokens/${made.row.id}/revoke`, 200);
    assert.ok(revoked.revokedAt);
    assert.equal((await call('GET', '/api/v1/mappings', { token: made.token })).status, 401, 'a revoked token is refused');
    const twice = await checked('POST', `/api/v1/tokens/${made.row.id}/revoke`, 404);
    assert.equal(twice.error.code, 'NOT_FOUND');
    await pending();
    const created = (await auditRows('token.created')).filter((r) => r.subject === `token:${made.row.id}`);
    assert.equal(created.length, 1);
    assert.equal(`${created[0]!.actor_type}:${created[0]!.actor_id}`, made.row.createdBy, 'created by the admin token\'s identity');
    assert.ok(!created[0]!.entry.includes(made.token));
    const gone = (await auditRows('token.revoked')).filter((r) => r.subject === `token:${made.row.id}`);
    assert.deepEqual(gone.map((r) => `${r.actor_type}:${r.actor_id}`), ['api:admin-token']);
  });

  test('GET /records/{mapping}/{key}?unmasked=1: needs pii besides read (403), a reason (400); the view is audited as pii.viewed', async () => {
    const [k] = await f.q<{ key: string }>(`SELECT key FROM ${schema}.run_items WHERE run_id = $1 ORDER BY key OFFSET 1 LIMIT 1`, [f.runs[0]!.runId]);
    const path = `/api/v1/records/${MAPPING}/${encodeURIComponent(k!.key)}`;
    // Personal data in the delivered payload: masked in the ordinary view, in clear only in the audited one.
    const changed = await f.q(`UPDATE ${schema}.delivered SET payload = payload || '{"email": "dora.diaz@example.com"}'::jsonb WHERE mapping = $1 AND key = $2 RETURNING 1`, [MAPPING, k!.key]);
    assert.equal(changed.length, 1);
    const masked = await checked('GET', path, 200, { token: tokens.get('viewer')! });
    assert.ok(masked.delivered && !JSON.stringify(masked).includes('dora.diaz@example.com'), 'masked without unmasked=1');
    for (const role of ['viewer', 'auditor', 'operator'] as Role[]) {
      const r = await checked('GET', `${path}?unmasked=1&reason=ticket-7`, 403, { token: tokens.get(role)! });
      assert.equal(r.error.code, 'FORBIDDEN', role);
    }
    const noReason = await checked('GET', `${path}?unmasked=1`, 400);
    assert.equal(noReason.error.code, 'REASON_REQUIRED');
    await pending();
    assert.equal((await auditRows('pii.viewed')).length, 0, 'no view was recorded for the refused calls');
    const r = await checked('GET', `${path}?unmasked=1&reason=${encodeURIComponent('ticket 7: customer asked')}`, 200, { token: tokens.get('admin')! });
    assert.equal(r.key, k!.key);
    assert.equal(r.delivered.payload.email, 'dora.diaz@example.com', 'unmasked');
    await pending();
    const views = await auditRows('pii.viewed');
    assert.equal(views.length, 1);
    assert.equal(views[0]!.subject, `record:${MAPPING}`);
    assert.match(views[0]!.entry, /ticket 7: customer asked/);
    assert.match(`${views[0]!.actor_type}:${views[0]!.actor_id}`, /^api:token:ssk_[0-9A-Za-z]{8}:control-admin$/, 'recorded as the caller');
  });

  // Last: it breaks the trail on purpose.
  test('GET /audit/verify: ok on the real trail; names the first edited row after tampering', async () => {
    const v = await checked('GET', '/api/v1/audit/verify', 200, { token: tokens.get('auditor')! });
    assert.equal(v.ok, true, JSON.stringify(v.problems));
    assert.equal(v.firstProblem, null);
    assert.ok(v.rows >= 10, `rows ${v.rows}`);
    const viewer = await call('GET', '/api/v1/audit/verify', { token: tokens.get('viewer')! });
    assert.deepEqual([viewer.status, viewer.json.error.code], [403, 'FORBIDDEN']);
    const [victim] = await f.q<{ seq: string }>(`SELECT seq FROM ${schema}.audit ORDER BY seq OFFSET 3 LIMIT 1`);
    await f.q(`ALTER TABLE ${schema}.audit DISABLE TRIGGER USER`);
    await f.q(`UPDATE ${schema}.audit SET entry = replace(entry, '"action":', '"action" :') WHERE seq = $1`, [victim!.seq]);
    await f.q(`ALTER TABLE ${schema}.audit ENABLE TRIGGER USER`);
    const bad = await checked('GET', '/api/v1/audit/verify', 200, { token: tokens.get('auditor')! });
    assert.equal(bad.ok, false);
    assert.deepEqual([bad.firstProblem.kind, bad.firstProblem.seq], ['edited', Number(victim!.seq)], JSON.stringify(bad.firstProblem));
  });
});
