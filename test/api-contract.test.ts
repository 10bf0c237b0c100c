import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { insertEvent } from '../src/state/events.ts';
import { RUN_STATES } from '../src/state/machine.ts';
import { controlPlaneFixture, MAPPING, TOKEN, type ControlPlaneFixture } from './helpers/control-plane.ts';
import { waitFor } from './helpers/wait.ts';

/**
 * The API against its own OpenAPI document, on real data from real runs (issue 17): every answer is
 * validated against the response schema the document declares for its route and status; bad input is a
 * 400/404/409 with a code and what was wrong, never an empty 200; nothing answers without the token.
 */

let f: ControlPlaneFixture;
let doc: { paths: Record<string, Record<string, { 'x-permission': string; responses: Record<string, { content?: { 'application/json': { schema: object } } }> }>> };
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const validators = new Map<string, ReturnType<typeof ajv.compile>>();

before(async () => {
  f = await controlPlaneFixture();
  doc = (await call('GET', '/api/v1/openapi.json')).json as typeof doc;
});
after(async () => {
  await f?.close();
});

async function call(method: string, path: string, o: { body?: unknown; token?: string | null } = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (o.token !== null) headers.authorization = `Bearer ${o.token ?? TOKEN}`;
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(f.url + path, { method, headers, ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, headers: res.headers };
}

/** The document's route template for a concrete path (/api/v1/runs/12 -> /api/v1/runs/{id}). */
function template(path: string): string {
  const p = path.split('?')[0]!;
  const t = Object.keys(doc.paths).find((k) => new RegExp(`^${k.replace(/\{\w+\}/g, '[^/]+')}$`).test(p));
  assert.ok(t, `the OpenAPI document has no route for ${p}`);
  return t;
}

/** Calls the API and validates the answer against the document's schema for that route and status. */
async function checked(method: string, path: string, status: number, o: { body?: unknown } = {}) {
  const r = await call(method, path, o);
  assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.json)}`);
  const t = template(path);
  const op = doc.paths[t]![method.toLowerCase()];
  assert.ok(op, `${method} ${t} is not in the document`);
  const schema = op.responses[String(status)]?.content?.['application/json'].schema;
  assert.ok(schema, `${method} ${t} declares no ${status} response`);
  const key = `${method} ${t} ${status}`;
  let v = validators.get(key);
  if (!v) validators.set(key, (v = ajv.compile(schema)));
  assert.ok(v(r.json), `${key} does not match the document: ${ajv.errorsText(v.errors)}\n${JSON.stringify(r.json).slice(0, 500)}`);
  return r.json;
}

describe('the API and its OpenAPI document', () => {
  test('the document is OpenAPI 3.1, generated for every route, each declaring a permission', () => {
    assert.equal((doc as unknown as { openapi: string }).openapi, '3.1.0');
    for (const p of ['/api/v1/mappings', '/api/v1/runs', '/api/v1/runs/{id}', '/api/v1/runs/{id}/items', '/api/v1/runs/{id}/approve', '/api/v1/runs/{id}/reject',
      '/api/v1/runs/{id}/cancel', '/api/v1/records/{mapping}/{key}', '/api/v1/events', '/api/v1/monitors', '/api/v1/mappings/{name}/runs', '/api/v1/segments']) {
      assert.ok(doc.paths[p], `missing ${p}`);
      for (const op of Object.values(doc.paths[p]!)) assert.ok(['read', 'run', 'approve'].includes(op['x-permission']), `${p}: ${op['x-permission']}`);
    }
    assert.equal(doc.paths['/api/v1/runs/{id}/approve']!.post!['x-permission'], 'approve');
  });

  test('no credential, a wrong one, or none configured: refused with a code', async () => {
    const none = await call('GET', '/api/v1/runs', { token: null });
    assert.deepEqual([none.status, none.json.error.code], [401, 'UNAUTHENTICATED']);
    const wrong = await call('GET', '/api/v1/runs', { token: 'not-the-token' });
    assert.deepEqual([wrong.status, wrong.json.error.code], [401, 'UNAUTHENTICATED']);
    const saved = process.env.SEGSYNC_API_TOKEN;
    delete process.env.SEGSYNC_API_TOKEN;
    try {
      const off = await call('GET', '/api/v1/runs');
      assert.deepEqual([off.status, off.json.error.code], [403, 'API_DISABLED']);
      const page = await fetch(f.url + '/', { redirect: 'manual' });
      assert.equal(page.status, 403);
    } finally {
      process.env.SEGSYNC_API_TOKEN = saved;
    }
    const page = await fetch(f.url + '/runs/1', { redirect: 'manual' });
    assert.deepEqual([page.status, page.headers.get('location')], [303, '/login?next=%2Fruns%2F1'], 'the dashboard sends a stranger to the login form');
  });

  test('mappings: the held run first, with schedule, next run and freshness', async () => {
    const body = await checked('GET', '/api/v1/mappings', 200);
    const m = body.mappings[0];
    assert.equal(m.name, MAPPING);
    assert.deepEqual([m.waiting.id, m.waiting.status], [f.held.runId, 'held']);
    assert.equal(m.lastRun.id, f.held.runId);
    assert.equal(m.schedule, '0 4 * * *');
    assert.ok(m.nextRun && new Date(m.nextRun).getTime() > Date.now());
    assert.ok(m.freshness.at, JSON.stringify(m.freshness));
    const one = await checked('GET', `/api/v1/mappings/${MAPPING}`, 200);
    assert.equal(one.name, MAPPING);
    const missing = await checked('GET', '/api/v1/mappings/nope', 404);
    assert.equal(missing.error.code, 'NOT_FOUND');
    assert.match(missing.error.message, /nope/);
  });

  test('runs: filters, cursor pages that add up to the whole list, and bad filters named', async () => {
    const all = await checked('GET', '/api/v1/runs?limit=500', 200);
    assert.equal(all.runs.length, f.runs.length + 1);
    assert.equal(all.nextCursor, null);
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page = await checked('GET', `/api/v1/runs?limit=2${cursor ? `&cursor=${cursor}` : ''}`, 200);
      assert.ok(page.runs.length <= 2);
      seen.push(...page.runs.map((r: { id: number }) => r.id));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, all.runs.map((r: { id: number }) => r.id), 'the pages are the list, in order, no gaps, no repeats');
    const held = await checked('GET', '/api/v1/runs?status=held', 200);
    assert.deepEqual(held.runs.map((r: { id: number }) => r.id), [f.held.runId]);
    const ok = await checked('GET', `/api/v1/runs?status=succeeded,held&mapping=${MAPPING}`, 200);
    assert.equal(ok.runs.length, f.runs.length + 1);

    const typo = await checked('GET', '/api/v1/runs?status=fialed', 400);
    assert.equal(typo.error.code, 'BAD_FILTER');
    assert.match(typo.error.message, /status 'fialed' is not allowed/);
    assert.deepEqual(typo.error.allowed, [...RUN_STATES]);
    const cur = await checked('GET', '/api/v1/runs?cursor=garbage', 400);
    assert.equal(cur.error.code, 'BAD_CURSOR');
    const items = await checked('GET', `/api/v1/runs/${f.runs[0]!.runId}/items?limit=1`, 200);
    const keyCursor = items.nextCursor as string;
    assert.ok(keyCursor, 'a first page of one item has a next page');
    assert.equal((await checked('GET', `/api/v1/runs?cursor=${keyCursor}`, 400)).error.code, 'BAD_CURSOR', 'an items cursor is no runs cursor');
    // A cursor is sealed: the key it continues after cannot be read out of it (nor the URL it goes into).
    assert.ok(!Buffer.from(keyCursor.slice(2), 'base64url').toString('latin1').includes(items.items[0].key.slice(0, 4)));
    assert.equal((await checked('GET', '/api/v1/runs?mapping=nope', 400)).error.code, 'BAD_FILTER');
    assert.equal((await checked('GET', '/api/v1/runs?limit=0', 400)).error.code, 'BAD_REQUEST');
    assert.equal((await checked('GET', '/api/v1/runs?colour=red', 400)).error.code, 'BAD_REQUEST');
  });

  test('a run: counts per op, receipts, verdicts, transitions, history; unknown ids 404', async () => {
    const s = f.runs[f.runs.length - 1]!;
    const r = await checked('GET', `/api/v1/runs/${s.runId}`, 200);
    assert.equal(r.status, 'succeeded');
    const planned = r.items.reduce((a: number, i: { n: number }) => a + i.n, 0);
    assert.equal(planned, s.counts.create + s.counts.update + s.counts.remove);
    const delivered = r.outcomes.filter((o: { status: string }) => o.status === 'delivered').reduce((a: number, o: { n: number }) => a + o.n, 0);
    assert.equal(delivered, s.counts.delivered);
    assert.ok(r.guardrails.verdicts.some((v: { rule: string }) => v.rule === 'distribution'));
    assert.equal(r.transitionField, 'rfm_segment');
    assert.ok(r.transitions.length > 0);
    assert.deepEqual(r.history.map((h: { to: string }) => h.to), ['planning', 'planned', 'delivering', 'succeeded']);
    assert.deepEqual(r.actions, []);
    const h = await checked('GET', `/api/v1/runs/${f.held.runId}`, 200);
    assert.deepEqual(h.actions, ['approve', 'reject', 'cancel']);
    assert.ok(h.guardrails.verdicts.some((v: { verdict: string }) => v.verdict === 'hold'));
    assert.equal((await checked('GET', '/api/v1/runs/999999', 404)).error.code, 'NOT_FOUND');
    assert.equal((await checked('GET', '/api/v1/runs/abc', 400)).error.code, 'BAD_REQUEST');
  });

  test('planned items page by key, each key once', async () => {
    const s = f.runs[0]!;
    const keys: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await checked('GET', `/api/v1/runs/${s.runId}/items?limit=100${cursor ? `&cursor=${cursor}` : ''}`, 200);
      keys.push(...page.items.map((i: { key: string }) => i.key));
      cursor = page.nextCursor;
    } while (cursor);
    assert.equal(keys.length, s.counts.create + s.counts.update + s.counts.remove);
    assert.deepEqual(keys, [...keys].sort(), 'in key order');
    assert.equal(new Set(keys).size, keys.length);
    const creates = await checked('GET', `/api/v1/runs/${s.runId}/items?op=create&limit=5`, 200);
    assert.ok(creates.items.every((i: { op: string; status: string }) => i.op === 'create' && i.status === 'delivered'));
    assert.equal((await checked('GET', `/api/v1/runs/${s.runId}/items?op=upsert`, 400)).error.code, 'BAD_REQUEST');
    assert.equal((await checked('GET', '/api/v1/runs/999999/items', 404)).error.code, 'NOT_FOUND');
  });

  test('a record: what each run sent, before and after, receipts, and the customer\'s segment history', async () => {
    const [k] = await f.q<{ key: string; n: number }>(
      `SELECT key, count(*)::int AS n FROM segsync.run_items GROUP BY key ORDER BY 2 DESC, 1 LIMIT 1`);
    const t = await checked('GET', `/api/v1/records/${MAPPING}/${k!.key}`, 200);
    assert.equal(t.runs.length, k!.n);
    assert.ok(t.runs.every((e: { receipt: unknown; runId: number }) => e.runId === f.held.runId || e.receipt !== null), 'every sent change has its receipt');
    assert.ok(t.runs.some((e: { receipt: { requestId: string | null } | null }) => e.receipt !== null), 'receipts carry their ids');
    assert.ok(t.delivered?.payload, 'the delivered state');
    const hist = await f.q<{ n: number }>(`SELECT count(*)::int AS n FROM rfm_segments_hist WHERE user_id = $1`, [k!.key]);
    assert.equal(t.segments.length, hist[0]!.n);
    assert.ok(t.segments.length >= 5);
    // The sealed ref stands for the key in a URL: the same timeline, and the key is nowhere in the path.
    const byRef = await checked('GET', `/api/v1/records/${MAPPING}/${t.ref}`, 200);
    assert.ok(!String(t.ref).includes(k!.key));
    assert.deepEqual(byRef.runs.map((e: { runId: number }) => e.runId), t.runs.map((e: { runId: number }) => e.runId));
    assert.equal((await checked('GET', `/api/v1/records/${MAPPING}/${String(t.ref).slice(0, -3)}abc`, 404)).error.code, 'NOT_FOUND', 'an edited ref finds nothing');
    assert.equal((await checked('GET', `/api/v1/records/${MAPPING}/nobody`, 404)).error.code, 'NOT_FOUND');
    assert.equal((await checked('GET', '/api/v1/records/nope/u000001', 404)).error.code, 'NOT_FOUND');
  });

  test('receipts, as segsync receipts reads them; a bad status is named', async () => {
    const s = f.runs[0]!;
    const r = await checked('GET', `/api/v1/receipts?run=${s.runId}&limit=500`, 200);
    assert.equal(r.receipts.length, Math.min(500, s.counts.delivered));
    assert.ok(r.receipts.every((x: { run_id: number; status: string }) => x.run_id === s.runId && x.status === 'delivered'));
    const bad = await checked('GET', '/api/v1/receipts?status=fialed', 400);
    assert.match(bad.error.message, /status: Invalid option: expected one of "delivered"\|"failed"/);
  });

  test('events, monitors, segments; an e-mail address in an event is masked', async () => {
    await insertEvent(f.app.warehouse.pool, 'segsync', { kind: 'test_event', severity: 'warning', mapping: MAPPING, message: 'bounce for alice.smith@example.com', details: { email: 'alice.smith@example.com', full_name: 'Alice Smith' } });
    const e = await checked('GET', '/api/v1/events?severity=warning', 200);
    const ev = e.events.find((x: { kind: string }) => x.kind === 'test_event');
    assert.ok(ev);
    const text = JSON.stringify(e);
    assert.ok(!text.includes('alice.smith@example.com') && !text.includes('Alice Smith'), text);
    assert.match(ev.message, /a\*\*\*@e\*\*\*\.com/);
    assert.equal((await checked('GET', '/api/v1/events?severity=loud', 400)).error.code, 'BAD_FILTER');
    assert.ok((await checked('GET', '/api/v1/events?limit=1', 200)).nextCursor);
    await checked('GET', '/api/v1/monitors', 200);
    const s = await checked('GET', '/api/v1/segments', 200);
    const snaps = await f.q<{ n: number }>(`SELECT count(DISTINCT snapshot_at)::int AS n FROM rfm_segments_hist`);
    assert.equal(s.sizes.snapshots.length, Math.min(36, snaps[0]!.n));
    assert.ok(s.sizes.snapshots.length > 5);
    assert.ok(s.flows.flows.length > 0);
    assert.equal(s.changed.runs.length, f.runs.length + 1);
  });

  test('a dry run writes nothing; approve delivers the held run; approving twice is 409; reject and cancel', async () => {
    const runsBefore = (await f.q<{ n: number }>(`SELECT count(*)::int AS n FROM segsync.runs`))[0]!.n;
    const dry = await checked('POST', `/api/v1/mappings/${MAPPING}/runs`, 200, { body: { dryRun: true } });
    assert.ok(dry.guardrails.length > 0);
    assert.equal((await f.q<{ n: number }>(`SELECT count(*)::int AS n FROM segsync.runs`))[0]!.n, runsBefore, 'a dry run takes no run id');
    const blocked = await checked('POST', `/api/v1/mappings/${MAPPING}/runs`, 409, { body: {} });
    assert.equal(blocked.error.code, 'RUN_HELD');

    assert.equal((await checked('POST', `/api/v1/runs/${f.held.runId}/approve`, 400, { body: { reason: '  ' } })).error.code, 'BAD_REQUEST');
    const ok = await checked('POST', `/api/v1/runs/${f.held.runId}/approve`, 200, { body: { reason: 'the definitions changed on purpose' } });
    assert.deepEqual([ok.status, ok.by, ok.delivering], ['approved', 'api:admin-token', true]);
    const twice = await checked('POST', `/api/v1/runs/${f.held.runId}/approve`, 409, { body: { reason: 'again' } });
    assert.equal(twice.error.code, 'ALREADY_DECIDED');
    await waitFor('the approved run to be delivered', async () => (await f.q<{ status: string }>(`SELECT status FROM segsync.runs WHERE id = $1`, [f.held.runId]))[0]!.status === 'succeeded');
    // Once its delivery has moved it on, an approved run is still one already decided (not a mere conflict).
    assert.equal((await checked('POST', `/api/v1/runs/${f.held.runId}/approve`, 409, { body: { reason: 'again, later' } })).error.code, 'ALREADY_DECIDED');
    const hist = await checked('GET', `/api/v1/runs/${f.held.runId}`, 200);
    assert.ok(hist.history.some((h: { to: string; actor: string; reason: string }) => h.to === 'approved' && h.actor === 'api:admin-token' && h.reason === 'the definitions changed on purpose'));
    assert.equal((await checked('POST', '/api/v1/runs/999999/approve', 404, { body: { reason: 'x' } })).error.code, 'NOT_FOUND');

    // A second move is held again: reject it through the API, then a third: cancel it.
    await f.moveSegments(0.12);
    const trig = await checked('POST', `/api/v1/mappings/${MAPPING}/runs`, 202, { body: {} });
    await waitFor('the triggered run to be held', async () => (await f.q<{ status: string }>(`SELECT status FROM segsync.runs WHERE id = $1`, [trig.runId]))[0]?.status === 'held');
    const rej = await checked('POST', `/api/v1/runs/${trig.runId}/reject`, 200, { body: { reason: 'an upstream bug' } });
    assert.equal(rej.status, 'rejected');
    assert.equal((await checked('POST', `/api/v1/runs/${trig.runId}/reject`, 409, { body: { reason: 'again' } })).error.code, 'ALREADY_DECIDED');
    assert.equal((await checked('POST', `/api/v1/runs/${trig.runId}/cancel`, 409, { body: { reason: 'late' } })).error.code, 'ALREADY_DECIDED');
    const trig2 = await checked('POST', `/api/v1/mappings/${MAPPING}/runs`, 202, { body: {} });
    await waitFor('the next run to be held', async () => (await f.q<{ status: string }>(`SELECT status FROM segsync.runs WHERE id = $1`, [trig2.runId]))[0]?.status === 'held');
    // The API's identity made this run: it may not approve it itself.
    assert.equal((await checked('POST', `/api/v1/runs/${trig2.runId}/approve`, 403, { body: { reason: 'mine' } })).error.code, 'SELF_APPROVAL');
    assert.equal((await checked('POST', `/api/v1/runs/${trig2.runId}/cancel`, 200, { body: { reason: 'not today' } })).status, 'cancelled');
  });

  test('unknown API routes are a 404 with a code', async () => {
    const r = await call('GET', '/api/v1/nothing');
    assert.deepEqual([r.status, r.json.error.code], [404, 'NOT_FOUND']);
  });
});
