import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Mapping } from '../src/config/mapping.ts';
import { DestinationError } from '../src/errors.ts';
import { signatureFor, verifyWebhookSignature } from '../src/webhook/verify.ts';
import type { Change, DestinationSession, Payload } from '../destinations/types.ts';
import { webhook } from '../destinations/webhook/index.ts';
import { startWebhookEmulator, type WebhookEmulator } from './emulators/webhook/server.ts';
import { testLog } from './helpers/pg.ts';

for (const v of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) delete process.env[v];

const SECRET = 'test-secret-0123456789abcdef';
const signal = new AbortController().signal;

const mapping = Mapping.parse({
  name: 'rfm-to-webhook',
  source: { model: 'rfm_current_segments', key: 'user_id' },
  destination: { connection: 'hooks', object: 'customers', match_key: 'customer_id' },
  fields: [{ to: 'rfm_segment', from: 'segment' }, { to: 'rfm_score', from: 'rfm_score' }],
  on_removed: 'clear',
});

function change(key: string, after: Payload | null, before: Payload | null = null): Change {
  return { key, op: after === null ? 'remove' : before ? 'update' : 'create', before, after, payloadHash: createHash('md5').update(JSON.stringify(after)).digest('hex'), destinationId: null, attempt: 1 };
}

async function session(url: string, extra: Record<string, unknown> = {}, runId?: number): Promise<DestinationSession> {
  return webhook.connect({
    connection: webhook.connectionSchema.parse({ type: 'webhook', url: `${url}/segsync`, secret: SECRET, timeout_ms: 5000, ...extra }),
    connectionName: 'hooks', mapping, options: {}, log: testLog, shared: new Map(), ...(runId === undefined ? {} : { runId }),
  });
}

describe('webhook destination through the sample receiver', () => {
  let emu: WebhookEmulator;
  let clock = 0;
  before(async () => { emu = await startWebhookEmulator({ secret: SECRET, validate: (c) => (c.key === 'u-bad' ? 'customer u-bad is archived' : undefined), now: () => Date.now() + clock }); });
  after(async () => { await emu.close(); });
  beforeEach(() => {
    clock = 0;
    emu.requests.length = 0;
    emu.receiver.clear();
    emu.faults.clear();
  });

  test('posts a signed batch of changes; the receiver verifies it and applies it', async () => {
    const s = await session(emu.url);
    const res = await s.deliver([change('u-1', { rfm_segment: 'Champions', rfm_score: 555 }), change('u-2', { rfm_segment: 'Lost', rfm_score: 111 })], signal);
    assert.deepEqual(res.outcomes.map((o) => o.status), ['delivered', 'delivered']);
    assert.deepEqual(emu.receiver.records.get('u-1'), { rfm_segment: 'Champions', rfm_score: 555 });
    const [req] = emu.requests;
    assert.ok(req);
    const body = JSON.parse(req.body);
    assert.equal(body.mapping, 'rfm-to-webhook');
    assert.equal(body.on_removed, 'clear');
    assert.ok(!Number.isNaN(Date.parse(body.sent_at)));
    assert.deepEqual(Object.keys(body.changes[0]).sort(), ['after', 'before', 'id', 'key', 'op', 'payload_hash']);
    assert.match(body.changes[0].id, /^segsync-[0-9a-f]{64}$/);
    assert.match(String(req.headers['x-segsync-signature']), /^v1=[0-9a-f]{64}$/);
    assert.match(String(req.headers['idempotency-key']), /^segsync-[0-9a-f]{64}$/);
    assert.deepEqual(verifyWebhookSignature(SECRET, String(req.headers['x-segsync-timestamp']), req.body, String(req.headers['x-segsync-signature'])), { ok: true });
    assert.ok(!JSON.stringify(req.headers).includes(SECRET), 'the secret never travels');
  });

  test('a tampered body and an old timestamp (replay) are refused by the sample receiver', async () => {
    const s = await session(emu.url);
    await s.deliver([change('u-1', { rfm_segment: 'Champions', rfm_score: 555 })], signal);
    const [req] = emu.requests;
    assert.ok(req);
    const tampered = await emu.replay({ ...req, body: req.body.replace('Champions', 'Hibernating') });
    assert.equal(tampered.status, 401);
    assert.match(tampered.text, /does not match/);
    clock = 301_000; // the same request, 301 s later: outside the 300 s window
    const replayed = await emu.replay(req);
    assert.equal(replayed.status, 401);
    assert.match(replayed.text, /window/);
    assert.deepEqual(emu.receiver.refused.map((r) => r.reason), ['mismatch', 'expired']);
    assert.equal(emu.receiver.records.get('u-1')?.rfm_segment, 'Champions');
  });

  test('signature verification: rotation list, malformed and missing headers', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const ts = String(now / 1000);
    const good = signatureFor(SECRET, ts, '{}');
    assert.deepEqual(verifyWebhookSignature(SECRET, ts, '{}', `v1=${'0'.repeat(64)}, ${good}`, { now }), { ok: true });
    assert.equal(verifyWebhookSignature('other-secret-xxxxxxxx', ts, '{}', good, { now }).ok, false);
    const r1 = verifyWebhookSignature(SECRET, 'yesterday', '{}', good, { now });
    assert.ok(!r1.ok && r1.reason === 'malformed');
    const r2 = verifyWebhookSignature(SECRET, undefined, '{}', good, { now });
    assert.ok(!r2.ok && r2.reason === 'missing');
    const r3 = verifyWebhookSignature(SECRET, String(now / 1000 + 400), '{}', signatureFor(SECRET, now / 1000 + 400, '{}'), { now });
    assert.ok(!r3.ok && r3.reason === 'expired', 'future-dated timestamps are refused too');
    assert.equal(verifyWebhookSignature(SECRET, String(now / 1000 - 250), '{}', signatureFor(SECRET, now / 1000 - 250, '{}'), { now }).ok, true);
  });

  test('a resent batch keeps its Idempotency-Key and the receiver applies it once', async () => {
    const changes = [change('u-idem', { rfm_segment: 'Champions', rfm_score: 555 })];
    const applied = emu.receiver.applied;
    await (await session(emu.url)).deliver(changes, signal);
    await (await session(emu.url)).deliver(changes, signal);
    const [a, b] = emu.requests;
    assert.equal(a?.headers['idempotency-key'], b?.headers['idempotency-key']);
    assert.equal(emu.receiver.applied, applied + 1);
    await (await session(emu.url)).deliver([change('u-idem', { rfm_segment: 'Lost', rfm_score: 111 })], signal);
    assert.notEqual(emu.requests[2]?.headers['idempotency-key'], a?.headers['idempotency-key']);
  });

  test('per-record outcomes from the receiver are used', async () => {
    const res = await (await session(emu.url)).deliver([change('u-1', { rfm_segment: 'Champions', rfm_score: 5 }), change('u-bad', { rfm_segment: 'Lost', rfm_score: 1 })], signal);
    const bad = res.outcomes.find((o) => o.key === 'u-bad');
    assert.equal(bad?.status, 'failed');
    assert.equal(bad?.errorCode, 'WEBHOOK_RECORD_ERROR');
    assert.equal(bad?.errorMessage, 'customer u-bad is archived');
    assert.equal(res.outcomes.find((o) => o.key === 'u-1')?.status, 'delivered');
  });

  test('a bare 2xx means all delivered; results missing a key fail that key', async () => {
    emu.faults.queue({ kind: 'status', status: 204 });
    const r1 = await (await session(emu.url)).deliver([change('u-1', { rfm_segment: 'A', rfm_score: 1 })], signal);
    assert.equal(r1.outcomes[0]?.status, 'delivered');
    emu.faults.queue({ kind: 'status', status: 200, body: JSON.stringify({ results: [{ key: 'u-1', status: 'ok' }] }) });
    const r2 = await (await session(emu.url)).deliver([change('u-1', { rfm_segment: 'A', rfm_score: 1 }), change('u-2', { rfm_segment: 'B', rfm_score: 2 })], signal);
    assert.equal(r2.outcomes.find((o) => o.key === 'u-2')?.errorCode, 'WEBHOOK_NO_RESULT');
  });

  test('429 and 5xx are retryable with Retry-After; other 4xx are not; a reset is retryable', async () => {
    const s = await session(emu.url);
    const one = [change('u-1', { rfm_segment: 'A', rfm_score: 1 })];
    emu.faults.queue({ kind: 'status', status: 429, retryAfterSec: 3 }, { kind: 'status', status: 502 }, { kind: 'status', status: 422, body: 'z'.repeat(3000) }, { kind: 'reset' });
    await assert.rejects(s.deliver(one, signal), (e: unknown) => e instanceof DestinationError && e.retryable && e.retryAfterMs === 3000 && e.code === 'RATE_LIMITED');
    await assert.rejects(s.deliver(one, signal), (e: unknown) => e instanceof DestinationError && e.retryable && e.status === 502);
    await assert.rejects(s.deliver(one, signal), (e: unknown) => e instanceof DestinationError && !e.retryable && e.status === 422 && e.message.length < 800);
    await assert.rejects(s.deliver(one, signal), (e: unknown) => e instanceof DestinationError && e.retryable && e.code === 'NETWORK');
  });

  test('a wrong secret: check() and deliver fail with UNAUTHORIZED, not retryable', async () => {
    await (await session(emu.url)).check();
    const wrong = await webhook.connect({
      connection: webhook.connectionSchema.parse({ url: `${emu.url}/segsync`, secret: 'another-secret-0123456789' }),
      connectionName: 'hooks', mapping, options: {}, log: testLog, shared: new Map(),
    });
    await assert.rejects(wrong.check(), (e: unknown) => e instanceof DestinationError && e.code === 'UNAUTHORIZED' && !e.retryable && /same secret/.test(e.message));
    await assert.rejects(wrong.deliver([change('u-1', { rfm_segment: 'A', rfm_score: 1 })], signal), (e: unknown) => e instanceof DestinationError && e.code === 'UNAUTHORIZED' && !e.retryable);
  });

  test('removal: the receiver gets op remove with the previous values and clears them', async () => {
    const s = await session(emu.url);
    await s.deliver([change('u-1', { rfm_segment: 'Champions', rfm_score: 5 })], signal);
    const res = await s.deliver([change('u-1', null, { rfm_segment: 'Champions', rfm_score: 5 })], signal);
    assert.equal(res.outcomes[0]?.status, 'delivered');
    const last = JSON.parse(emu.requests.at(-1)?.body ?? '{}');
    assert.deepEqual(last.changes[0].before, { rfm_segment: 'Champions', rfm_score: 5 });
    assert.deepEqual(emu.receiver.records.get('u-1'), { rfm_segment: null, rfm_score: null });
  });

  test('read-back: verified, drifted and missing through read_back_url; unverifiable without it', async () => {
    const s = await session(emu.url, { read_back_url: `${emu.url}/read` });
    await s.deliver([change('u-rb1', { rfm_segment: 'Champions', rfm_score: 555 }), change('u-rb2', { rfm_segment: 'Lost', rfm_score: 111 })], signal);
    emu.receiver.records.set('u-rb2', { rfm_segment: 'Hibernating', rfm_score: '111' }); // edited on the other side
    const rb = await s.readBack([
      { key: 'u-rb1', expected: { rfm_segment: 'Champions', rfm_score: 555 }, destinationId: null },
      { key: 'u-rb2', expected: { rfm_segment: 'Lost', rfm_score: 111 }, destinationId: null },
      { key: 'u-rb3', expected: { rfm_segment: 'Lost', rfm_score: 1 }, destinationId: null },
    ], signal);
    assert.deepEqual(rb.map((r) => r.status), ['verified', 'drifted', 'missing']);
    assert.deepEqual(rb[1]?.driftedFields, ['rfm_segment'], '"111" and 111 are the same value');
    assert.ok(emu.requests.at(-1)?.headers['x-segsync-signature'], 'read-back requests are signed too');
    const plain = await session(emu.url);
    assert.equal((await plain.readBack([{ key: 'u-rb1', expected: {}, destinationId: null }], signal))[0]?.status, 'unverifiable');
  });

  test('the same change resent with other batch boundaries carries the same id; the request key depends only on the set of ids', async () => {
    const a = change('u-a', { rfm_segment: 'Champions', rfm_score: 555 });
    const b = change('u-b', { rfm_segment: 'Lost', rfm_score: 111 });
    const c = change('u-c', { rfm_segment: 'Loyal', rfm_score: 444 });
    await (await session(emu.url, {}, 1)).deliver([a, b], signal);
    // The next run (a new session) resends b, now batched with c, then the same two in another order.
    const next = await session(emu.url, {}, 2);
    await next.deliver([b, c], signal);
    await next.deliver([c, b], signal);
    const bodies = emu.requests.map((r) => JSON.parse(r.body) as { changes: Array<{ id: string; key: string }> });
    const idOf = (n: number, key: string) => bodies[n]?.changes.find((x) => x.key === key)?.id;
    assert.ok(idOf(0, 'u-b'));
    assert.equal(idOf(1, 'u-b'), idOf(0, 'u-b'), 'u-b keeps its id across batches and runs');
    assert.equal(idOf(2, 'u-b'), idOf(0, 'u-b'));
    assert.equal(idOf(2, 'u-c'), idOf(1, 'u-c'));
    assert.notEqual(emu.requests[0]?.headers['idempotency-key'], emu.requests[1]?.headers['idempotency-key']);
    assert.equal(emu.requests[1]?.headers['idempotency-key'], emu.requests[2]?.headers['idempotency-key'], 'the same set of changes, the same key, in any order');
    assert.equal(emu.receiver.applied, 3, 'each change applied once');
    assert.equal(emu.receiver.duplicates, 3);
  });

  test('a delivered change\'s id is the record\'s destinationId, and the next change chains on it (A -> B -> A -> B: four ids)', async () => {
    const s = await session(emu.url);
    const A = { rfm_segment: 'Champions', rfm_score: 555 };
    const B = { rfm_segment: 'Lost', rfm_score: 111 };
    let prev: string | null = null;
    const ids: string[] = [];
    for (const [after, before] of [[A, null], [B, A], [A, B], [B, A]] as Array<[Payload, Payload | null]>) {
      const res = await s.deliver([{ ...change('u-1', after, before), destinationId: prev }], signal);
      prev = res.outcomes[0]?.destinationId ?? null;
      ids.push(JSON.parse(emu.requests.at(-1)?.body ?? '{}').changes[0].id);
      assert.equal(prev, ids.at(-1));
    }
    assert.equal(new Set(ids).size, 4);
    assert.equal(emu.receiver.applied, 4);
    assert.equal(emu.receiver.records.get('u-1')?.rfm_segment, 'Lost');
  });

  test('a record answered retryable is resent as a new attempt with a new id and key, never answered from a cache of its failure', async () => {
    let tries = 0;
    const cached = await startWebhookEmulator({ secret: SECRET, gatewayCache: true, validate: (c) => (c.key === 'u-lock' && ++tries <= 2 ? { error: 'row locked', retryable: true } : undefined) });
    try {
      const s = await session(cached.url);
      const lock = change('u-lock', { rfm_segment: 'Champions', rfm_score: 5 });
      const r1 = await s.deliver([lock], signal);
      assert.deepEqual([r1.outcomes[0]?.status, r1.outcomes[0]?.retryable], ['failed', true]);
      // The engine resends it alone with attempt 2, then 3: each a new attempt after a definite failure answer.
      const r2 = await s.deliver([{ ...lock, attempt: 2 }], signal);
      assert.equal(r2.outcomes[0]?.status, 'failed');
      const r3 = await s.deliver([{ ...lock, attempt: 3 }], signal);
      assert.equal(r3.outcomes[0]?.status, 'delivered', r3.outcomes[0]?.errorMessage);
      assert.equal(cached.replayedFromCache, 0, 'no attempt was answered from the gateway\'s cache');
      assert.equal(tries, 3, 'the receiver saw all three attempts');
      const ids = cached.requests.map((r) => JSON.parse(r.body).changes[0].id);
      assert.equal(new Set(ids).size, 3);
      assert.equal(new Set(cached.requests.map((r) => r.headers['idempotency-key'])).size, 3);
      assert.deepEqual(cached.receiver.records.get('u-lock'), { rfm_segment: 'Champions', rfm_score: 5 });
      // An identical resend (no answer came, say) keeps its key: the gateway answers it, nothing is applied twice.
      const again = await s.deliver([{ ...lock, attempt: 3 }], signal);
      assert.equal(again.outcomes[0]?.status, 'delivered');
      assert.equal(cached.replayedFromCache, 1);
      assert.equal(cached.receiver.applied, 1);
    } finally {
      await cached.close();
    }
  });

  test('a reset after the receiver applied the batch is in doubt; the resend is dropped per change id', async () => {
    const s = await session(emu.url);
    const changes = [change('u-1', { rfm_segment: 'A', rfm_score: 1 }), change('u-2', { rfm_segment: 'B', rfm_score: 2 })];
    emu.faults.queue({ kind: 'reset', phase: 'after' });
    await assert.rejects(s.deliver(changes, signal), (e: unknown) => e instanceof DestinationError && e.code === 'NETWORK' && e.retryable && e.inDoubt);
    assert.equal(emu.receiver.applied, 2, 'the receiver did apply it');
    const res = await s.deliver(changes, signal);
    assert.ok(res.outcomes.every((o) => o.status === 'delivered'));
    assert.deepEqual([emu.receiver.applied, emu.receiver.duplicates], [2, 2]);
  });

  test('connection refused: retryable, not in doubt, names the URL without its query string, says nothing was received', async () => {
    const { closedPortUrl } = await import('./helpers/cdp.ts');
    const base = await closedPortUrl();
    const s = await webhook.connect({
      connection: webhook.connectionSchema.parse({ url: `${base}/segsync?token=tok3n-s3cret`, secret: SECRET }),
      connectionName: 'hooks', mapping, options: {}, log: testLog, shared: new Map(),
    });
    await assert.rejects(s.deliver([change('u-1', { rfm_segment: 'A', rfm_score: 1 })], signal), (e: unknown) => {
      assert.ok(e instanceof DestinationError);
      assert.deepEqual([e.code, e.retryable, e.inDoubt], ['NETWORK', true, false]);
      assert.equal(e.message, `webhook POST: connection refused by ${base}/segsync: nothing was sent, the receiver got nothing`);
      assert.ok(!e.message.includes('tok3n') && !e.message.includes(SECRET));
      return true;
    });
  });

  test('a short secret is refused at connect', async () => {
    await assert.rejects(webhook.connect({ connection: webhook.connectionSchema.parse({ url: 'http://127.0.0.1:1/x', secret: 'short' }), connectionName: 'hooks', mapping, options: {}, log: testLog, shared: new Map() }), /at least 16 characters/);
  });
});

test('the sample receiver runs as documented: node docs/examples/webhook-receiver.ts', async () => {
  const child = spawn(process.execPath, ['docs/examples/webhook-receiver.ts'], { env: { ...process.env, WEBHOOK_SECRET: SECRET, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const base = /on (http:\/\/\S+)\/segsync/.exec(line.toString())?.[1];
    assert.ok(base, line.toString());
    const s = await session(base, { read_back_url: `${base}/read` });
    await s.check();
    await s.deliver([change('u-7', { rfm_segment: 'Loyal', rfm_score: 444 })], signal);
    const rb = await s.readBack([{ key: 'u-7', expected: { rfm_segment: 'Loyal', rfm_score: 444 }, destinationId: null }], signal);
    assert.equal(rb[0]?.status, 'verified');
  } finally {
    child.kill();
  }
});
