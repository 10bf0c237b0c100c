import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { DestinationError } from '../src/errors.ts';
import type { DestinationSession } from '../destinations/types.ts';
import type { CdpEmulator } from './emulators/cdp/server.ts';
import { cdpSession, closedPortUrl, FLAVOURS, removal, startCdpEmulator, upsert } from './helpers/cdp.ts';

const signal = new AbortController().signal;

for (const flavour of FLAVOURS) {
  describe(`${flavour}: identify batches over real HTTP`, () => {
    let emu: CdpEmulator;
    let session: DestinationSession;
    before(async () => { emu = await startCdpEmulator({ flavour }); });
    after(async () => { await emu.close(); });
    beforeEach(async () => {
      emu.reset();
      session = await cdpSession(emu);
    });

    test('each change becomes one identify with userId = key, the mapped traits and a short deterministic messageId', async () => {
      const res = await session.deliver([
        upsert('u-1', { rfm_segment: 'Champions', rfm_score: 555 }),
        upsert('u-2', { rfm_segment: 'At Risk', rfm_score: 211 }),
      ], signal);
      assert.deepEqual(res.outcomes.map((o) => [o.key, o.status]).sort(), [['u-1', 'delivered'], ['u-2', 'delivered']]);
      assert.equal(emu.requests.length, 1);
      assert.deepEqual(emu.profile('u-1'), { rfm_segment: 'Champions', rfm_score: 555 });
      const [ev] = emu.identifies('u-2');
      assert.equal(ev?.userId, 'u-2');
      assert.ok(ev?.messageId && ev.messageId.length < 100, 'messageId under 100 chars');
      // The receipt: the CDP's request id, and the messageId as the record's destination id.
      const o = res.outcomes.find((x) => x.key === 'u-2');
      assert.equal(o?.requestId, emu.requests[0]?.requestId);
      assert.equal(o?.destinationId, ev?.messageId);

      const again = await cdpSession(emu);
      await again.deliver([upsert('u-2', { rfm_segment: 'At Risk', rfm_score: 211 })], signal);
      assert.equal(emu.received.at(-1)?.messageId, ev?.messageId, 'the same change gives the same messageId in a new session');
    });

    test('a batch retried after a 5xx that came after ingestion is deduplicated: one identify per user', async () => {
      emu.faults.queue({ kind: 'status', status: 503, phase: 'after' });
      const changes = [upsert('u-1', { rfm_segment: 'Champions', rfm_score: 555 }), upsert('u-2', { rfm_segment: 'Lost', rfm_score: 111 })];
      await assert.rejects(session.deliver(changes, signal), (e: unknown) => e instanceof DestinationError && e.retryable && e.status === 503);
      const res = await (await cdpSession(emu)).deliver(changes, signal);
      assert.ok(res.outcomes.every((o) => o.status === 'delivered'));
      assert.equal(emu.received.length, 4, 'both requests reached the CDP');
      assert.equal(emu.duplicatesReceived(), 2);
      assert.equal(emu.identifies('u-1').length, 1);
      assert.equal(emu.identifies('u-2').length, 1);
    });

    test('a connection reset after ingestion is retryable and the resend is deduplicated', async () => {
      emu.faults.queue({ kind: 'reset', phase: 'after' });
      const changes = [upsert('u-9', { rfm_segment: 'Loyal', rfm_score: 444 })];
      await assert.rejects(session.deliver(changes, signal), (e: unknown) => e instanceof DestinationError && e.retryable && e.code === 'NETWORK');
      await session.deliver(changes, signal);
      assert.equal(emu.received.length, 2);
      assert.equal(emu.identifies('u-9').length, 1);
    });

    test('seeded fault storm: retrying until accepted leaves exactly one identify per user', async () => {
      emu.faults.randomly({ seed: 42, rate5xx: 0.3, rate429: 0.2, rateReset: 0.2, retryAfterSec: 0 });
      const users = Array.from({ length: 60 }, (_, i) => upsert(`u-${i}`, { rfm_segment: i % 2 ? 'Champions' : 'Lost', rfm_score: i }));
      // Three batches of 20, each retried the way the engine does (same changes, new attempt).
      for (let b = 0; b < 3; b++) {
        const batch = users.slice(b * 20, b * 20 + 20);
        let attempts = 0;
        for (;;) {
          attempts++;
          try {
            const res = await session.deliver(batch, signal);
            assert.equal(res.outcomes.filter((o) => o.status === 'delivered').length, 20);
            break;
          } catch (e) {
            assert.ok(e instanceof DestinationError && e.retryable, `only retryable failures in a storm: ${String(e)}`);
            assert.ok(attempts < 40, 'the storm ends');
          }
        }
      }
      assert.ok(emu.faults.injected.length > 3, 'faults were injected');
      for (const u of users) assert.equal(emu.identifies(u.key).length, 1, `one identify for ${u.key}`);
      assert.equal(emu.kept.length, 60);
    });

    test('429 is retryable and carries Retry-After in milliseconds', async () => {
      emu.faults.queue({ kind: 'status', status: 429, retryAfterSec: 7 });
      await assert.rejects(session.deliver([upsert('u-1', { rfm_segment: 'Champions', rfm_score: 1 })], signal), (e: unknown) => {
        assert.ok(e instanceof DestinationError);
        assert.equal(e.code, 'RATE_LIMITED');
        assert.equal(e.retryable, true);
        assert.equal(e.retryAfterMs, 7000);
        assert.match(e.message, flavour === 'segment' ? /too many requests/ : /Too many requests/);
        return true;
      });
      assert.equal(emu.kept.length, 0);
    });

    test('a 400 fails the batch non-retryably with the body capped', async () => {
      emu.faults.queue({ kind: 'status', status: 400, body: 'x'.repeat(5000) });
      // Segment wraps it as {success: false, message}; RudderStack sends it as plain text: both come back capped.
      await assert.rejects(session.deliver([upsert('u-1', { rfm_segment: 'Champions', rfm_score: 1 })], signal), (e: unknown) => {
        assert.ok(e instanceof DestinationError);
        assert.equal(e.retryable, false);
        assert.equal(e.status, 400);
        assert.ok(e.message.length < 800, `capped: ${e.message.length}`);
        assert.match(e.message, /5000 chars/);
        return true;
      });
    });

    test('a wrong write key is a non-retryable error naming write_key, found by check()', async () => {
      await session.check();
      const bad = await cdpSession(emu, { writeKey: 'nope' });
      await assert.rejects(bad.check(), (e: unknown) => e instanceof DestinationError && e.code === 'UNAUTHORIZED' && !e.retryable
        && e.message.includes(`write_key: \${${flavour === 'segment' ? 'SEGMENT_WRITE_KEY' : 'RUDDERSTACK_WRITE_KEY'}}`) && !e.message.includes('nope'));
      const wrongUrl = await cdpSession(emu, { baseUrl: `${emu.url}/wrong` });
      await assert.rejects(wrongUrl.deliver([upsert('u-1', { rfm_segment: 'A', rfm_score: 1 })], signal), (e: unknown) => e instanceof DestinationError && e.code === 'NOT_FOUND' && !e.retryable);
    });

    test('an oversize event fails only its own record; the others are delivered', async () => {
      const res = await session.deliver([
        upsert('u-1', { rfm_segment: 'Champions', rfm_score: 1 }),
        upsert('u-big', { rfm_segment: 'z'.repeat(40 * 1024), rfm_score: 2 }),
        upsert('u-3', { rfm_segment: 'Lost', rfm_score: 3 }),
      ], signal);
      const big = res.outcomes.find((o) => o.key === 'u-big');
      assert.equal(big?.status, 'failed');
      assert.equal(big?.errorCode, 'EVENT_TOO_LARGE');
      assert.equal(big?.retryable, false);
      assert.match(big?.errorMessage ?? '', /32768 bytes per event/);
      assert.equal(res.outcomes.filter((o) => o.status === 'delivered').length, 2);
      assert.deepEqual(emu.kept.map((e) => e.userId).sort(), ['u-1', 'u-3']);
      assert.ok(emu.requests.every((r) => r.status === 200), 'the emulator never saw the oversize event');
    });

    test('batches are split under the request byte limit', async () => {
      // ~3 KB per event: Segment must split 400 of them (~1.2 MB) under 500 KB; RudderStack's 4,000 KB takes one request.
      const changes = Array.from({ length: 400 }, (_, i) => upsert(`u-${i}`, { rfm_segment: `S${i}-${'p'.repeat(3000)}`, rfm_score: i }));
      const res = await session.deliver(changes, signal);
      assert.equal(res.outcomes.filter((o) => o.status === 'delivered').length, 400);
      assert.equal(emu.kept.length, 400);
      assert.ok(emu.requests.every((r) => r.status === 200));
      if (flavour === 'segment') {
        assert.ok(emu.requests.length >= 3, `split into ${emu.requests.length}`);
        assert.ok(emu.requests.every((r) => r.bytes <= 500 * 1024));
      } else {
        assert.equal(emu.requests.length, 1);
        assert.ok((emu.requests[0]?.bytes ?? 0) > 500 * 1024);
      }
    });

    test('a request refused with 400/413 fails only its own records; the other requests of the batch are delivered', async () => {
      const changes = Array.from({ length: 3000 }, (_, i) => upsert(`u-${i}`, { rfm_segment: 'Lost', rfm_score: i }));
      emu.faults.queue({ kind: 'pass' }, { kind: 'status', status: flavour === 'segment' ? 400 : 413 });
      const res = await session.deliver(changes, signal);
      const failed = res.outcomes.filter((o) => o.status === 'failed');
      assert.equal(emu.requests.length, 2);
      assert.equal(failed.length, emu.requests[1]?.events, 'exactly the second request\'s records failed');
      assert.ok(failed.every((o) => o.retryable === false && (flavour === 'segment' ? o.errorCode === 'REJECTED' : o.errorCode === 'REQUEST_TOO_LARGE')));
      if (flavour === 'rudderstack') assert.match(failed[0]?.errorMessage ?? '', /Request size exceeds max limit/);
      assert.equal(res.outcomes.filter((o) => o.status === 'delivered').length, 3000 - failed.length);
      assert.equal(emu.kept.length, 3000 - failed.length);
    });

    test('batches are split at 2,500 events so none is silently dropped', async () => {
      const changes = Array.from({ length: 3000 }, (_, i) => upsert(`u-${i}`, { rfm_segment: 'Lost', rfm_score: i }));
      const res = await session.deliver(changes, signal);
      assert.equal(res.outcomes.filter((o) => o.status === 'delivered').length, 3000);
      assert.equal(emu.requests.length, 2);
      assert.ok(emu.requests.every((r) => r.events <= 2500));
      assert.equal(emu.droppedBatches, 0);
      assert.equal(emu.kept.length, 3000);
    });

    // 5,001 records go out as three requests in both flavours (cut at 500 KB for Segment, 2,500 events for
    // RudderStack). Which records a request carried is read from what the emulator received, in order; the
    // last request takes the rest, sent or not.
    const threeRequests = () => Array.from({ length: 5001 }, (_, i) => upsert(`p-${i}`, { rfm_segment: 'Loyal', rfm_score: i }));
    const keysOfRequest = (changes: ReturnType<typeof threeRequests>, n: number) => {
      const sizes = emu.requests.filter((r) => r.events > 0).map((r) => r.events);
      const from = sizes.slice(0, n - 1).reduce((a, b) => a + b, 0);
      return changes.slice(from, n === 3 ? undefined : from + (sizes[n - 1] ?? 0)).map((c) => c.key);
    };

    test('request 2 of 3 answered 503: requests 1 and 3 are delivered, only request 2\'s records fail (retryable)', async () => {
      const changes = threeRequests();
      emu.faults.queue({ kind: 'pass' }, { kind: 'status', status: 503, retryAfterSec: 2 });
      const res = await session.deliver(changes, signal);
      assert.equal(emu.requests.length, 3, 'request 3 still went out');
      const byKey = new Map(res.outcomes.map((o) => [o.key, o]));
      for (const k of [...keysOfRequest(changes, 1), ...keysOfRequest(changes, 3)]) assert.equal(byKey.get(k)?.status, 'delivered', k);
      const second = keysOfRequest(changes, 2).map((k) => byKey.get(k));
      assert.ok(second.every((o) => o?.status === 'failed' && o.retryable === true && o.errorCode === 'SERVER_ERROR' && o.retryAfterMs === 2000));
      assert.match(second[0]?.errorMessage ?? '', /request 2 of 3/);
      assert.equal(emu.kept.length, 5001 - second.length);
      // The engine resends only the failed records, as a new attempt: same messageIds (the CDP keeps no record
      // of a failure, only of what it accepted), and now they land.
      const again = await session.deliver(changes.filter((c) => byKey.get(c.key)?.status === 'failed').map((c) => ({ ...c, attempt: 2 })), signal);
      assert.ok(again.outcomes.every((o) => o.status === 'delivered'));
      assert.equal(emu.kept.length, 5001);
      assert.equal(emu.duplicatesReceived(), 0, 'no delivered record was sent twice');
    });

    test('request 2 of 3 reset after the CDP read it: its records are in doubt, the others delivered; the resend is deduplicated', async () => {
      const changes = threeRequests();
      emu.faults.queue({ kind: 'pass' }, { kind: 'reset', phase: 'after' });
      const res = await session.deliver(changes, signal);
      const byKey = new Map(res.outcomes.map((o) => [o.key, o]));
      assert.ok(keysOfRequest(changes, 2).every((k) => byKey.get(k)?.status === 'in_doubt' && byKey.get(k)?.errorCode === 'NETWORK'));
      assert.equal(res.outcomes.filter((o) => o.status === 'delivered').length, 5001 - keysOfRequest(changes, 2).length);
      assert.equal(emu.kept.length, 5001, 'the CDP did hold request 2');
      // The next run resends the in-doubt records (attempt 1 again): the same messageIds, dropped as copies.
      const next = await (await cdpSession(emu)).deliver(changes.filter((c) => byKey.get(c.key)?.status === 'in_doubt'), signal);
      assert.ok(next.outcomes.every((o) => o.status === 'delivered'));
      assert.equal(emu.kept.length, 5001);
      assert.equal(emu.duplicatesReceived(), keysOfRequest(changes, 2).length);
    });

    test('a 429 on request 2 of 3 stops the batch: request 1 delivered, the rest failed retryable with Retry-After and not sent', async () => {
      const changes = threeRequests();
      emu.faults.queue({ kind: 'pass' }, { kind: 'status', status: 429, retryAfterSec: 5 });
      const res = await session.deliver(changes, signal);
      assert.equal(emu.requests.length, 2, 'request 3 was not sent into a rate limit');
      const byKey = new Map(res.outcomes.map((o) => [o.key, o]));
      assert.ok(keysOfRequest(changes, 1).every((k) => byKey.get(k)?.status === 'delivered'));
      const rest = [...keysOfRequest(changes, 2), ...keysOfRequest(changes, 3)].map((k) => byKey.get(k));
      assert.ok(rest.every((o) => o?.status === 'failed' && o.retryable && o.errorCode === 'RATE_LIMITED' && o.retryAfterMs === 5000));
      assert.match(byKey.get(keysOfRequest(changes, 3)[0]!)?.errorMessage ?? '', /^not sent: an earlier request of this batch failed/);
    });

    test('every request failing alike throws for the whole batch with the longest Retry-After', async () => {
      emu.faults.queue({ kind: 'status', status: 503, retryAfterSec: 1 }, { kind: 'status', status: 503, retryAfterSec: 4 }, { kind: 'status', status: 503 });
      await assert.rejects(session.deliver(threeRequests(), signal), (e: unknown) => e instanceof DestinationError && e.retryable && !e.inDoubt && e.status === 503 && e.retryAfterMs === 4000);
      assert.equal(emu.kept.length, 0);
    });

    test('a reset after sending is in doubt; connection refused is retryable, not in doubt, and names the URL', async () => {
      emu.faults.queue({ kind: 'reset', phase: 'after' });
      await assert.rejects(session.deliver([upsert('u-1', { rfm_segment: 'A', rfm_score: 1 })], signal),
        (e: unknown) => e instanceof DestinationError && e.code === 'NETWORK' && e.retryable && e.inDoubt && /may have been received/.test(e.message));
      const closed = await closedPortUrl();
      const down = await cdpSession(emu, { baseUrl: closed });
      await assert.rejects(down.deliver([upsert('u-1', { rfm_segment: 'A', rfm_score: 1 })], signal), (e: unknown) => {
        assert.ok(e instanceof DestinationError);
        assert.equal(e.code, 'NETWORK');
        assert.equal(e.retryable, true);
        assert.equal(e.inDoubt, false);
        assert.match(e.message, new RegExp(`connection refused by ${closed}/v1/batch: nothing was sent`));
        return true;
      });
    });

    test('removal clears the mapped traits by default', async () => {
      await session.deliver([upsert('u-1', { rfm_segment: 'Champions', rfm_score: 555 })], signal);
      const res = await session.deliver([removal('u-1', { rfm_segment: 'Champions', rfm_score: 555 })], signal);
      assert.equal(res.outcomes[0]?.status, 'delivered');
      assert.deepEqual(emu.profile('u-1'), { rfm_segment: null, rfm_score: null });
      assert.equal(emu.tracks('u-1').length, 0);
    });

    test('removal can send a configurable track event carrying the previous segment, or both', async () => {
      const trackOnly = await cdpSession(emu, { options: { removal: 'track', removal_event: 'RFM Segment Exited' } });
      await trackOnly.deliver([removal('u-1', { rfm_segment: 'Champions', rfm_score: 555 })], signal);
      const [t] = emu.tracks('u-1', 'RFM Segment Exited');
      assert.deepEqual(t?.properties, { rfm_segment: 'Champions', rfm_score: 555 });
      assert.equal(emu.identifies('u-1').length, 0);

      const both = await cdpSession(emu, { options: { removal: 'both' } });
      const res = await both.deliver([removal('u-2', { rfm_segment: 'Lost', rfm_score: 111 })], signal);
      assert.equal(res.outcomes.length, 1, 'one outcome per record even with two events');
      assert.equal(emu.tracks('u-2', 'Segment Exited').length, 1);
      assert.deepEqual(emu.profile('u-2'), { rfm_segment: null, rfm_score: null });
    });

    test('a user moving A -> B -> A gets three distinct messageIds, so the move back is not dropped as a duplicate', async () => {
      const A = { rfm_segment: 'Champions', rfm_score: 555 };
      const B = { rfm_segment: 'At Risk', rfm_score: 211 };
      const r1 = await session.deliver([upsert('u-1', A)], signal);
      const r2 = await session.deliver([upsert('u-1', B, A, r1.outcomes[0]?.destinationId ?? null)], signal);
      await session.deliver([upsert('u-1', A, B, r2.outcomes[0]?.destinationId ?? null)], signal);
      assert.equal(emu.identifies('u-1').length, 3);
      assert.equal(emu.profile('u-1')?.rfm_segment, 'Champions');
    });

    test('read-back: every record is unverifiable and names the accepted messageId', async () => {
      const res = await session.readBack([{ key: 'u-1', expected: { rfm_segment: 'A' }, destinationId: 'segsync-abc' }], signal);
      assert.equal(res[0]?.status, 'unverifiable');
      assert.match(res[0]?.detail ?? '', /segsync-abc/);
    });

    test('validateMapping names a wrong object or match key', async () => {
      assert.deepEqual(await session.validateMapping(), []);
      const { testMapping } = await import('./helpers/cdp.ts');
      const m = testMapping(flavour, { mode: 'update', destination: { connection: flavour, object: 'contacts', match_key: 'email', options: {} } });
      const problems = await (await cdpSession(emu, { mapping: m })).validateMapping();
      assert.equal(problems.length, 3);
      assert.match(problems.join('\n'), /object must be 'identify'[\s\S]*match_key must be userId or anonymousId[\s\S]*mode: update cannot be honoured/);
    });
  });
}

test('rudderstack answers 200 text/plain OK and plain-text errors', async () => {
  const emu = await startCdpEmulator({ flavour: 'rudderstack' });
  try {
    const ok = await fetch(`${emu.url}/v1/batch`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`${emu.writeKey}:`).toString('base64')}` }, body: JSON.stringify({ batch: [] }) });
    assert.match(ok.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await ok.text(), 'OK');
    const bad = await fetch(`${emu.url}/v1/batch`, { method: 'POST', headers: { authorization: 'Basic eDo=' }, body: '{}' });
    assert.equal(bad.status, 401);
    assert.equal(await bad.text(), 'Invalid write key');
  } finally {
    await emu.close();
  }
});

test('secrets come only from the connection block: a missing write_key or data plane URL is a config error, the environment is not read', async () => {
  const { rudderstack } = await import('../destinations/rudderstack/index.ts');
  const { segment } = await import('../destinations/segment/index.ts');
  const { testMapping } = await import('./helpers/cdp.ts');
  const { testLog } = await import('./helpers/pg.ts');
  const saved = { k: process.env.RUDDERSTACK_WRITE_KEY, u: process.env.RUDDERSTACK_DATA_PLANE_URL };
  // Set on purpose: a connection block without write_key must not pick them up.
  process.env.RUDDERSTACK_WRITE_KEY = 'from-env';
  process.env.RUDDERSTACK_DATA_PLANE_URL = 'http://127.0.0.1:9';
  try {
    const noKey = rudderstack.connectionSchema.safeParse({ base_url: 'http://127.0.0.1:9' });
    assert.equal(noKey.success, false);
    assert.match(noKey.error?.issues[0]?.message ?? '', /missing write_key: take it from the environment \(write_key: \$\{RUDDERSTACK_WRITE_KEY\}\)/);
    const noUrl = rudderstack.connectionSchema.safeParse({ write_key: 'k' });
    assert.equal(noUrl.success, false);
    assert.match(noUrl.error?.issues[0]?.message ?? '', /missing base_url: your data plane URL, e.g. base_url: \$\{RUDDERSTACK_DATA_PLANE_URL\}/);
    assert.match(rudderstack.connectionSchema.safeParse({ write_key: '', base_url: 'http://x' }).error?.issues[0]?.message ?? '', /write_key is empty/);
    // Segment has a default endpoint; `${RUDDERSTACK_DATA_PLANE_URL:-}` left empty is refused at connect.
    assert.equal(segment.connectionSchema.parse({ write_key: 'k' }).base_url, 'https://api.segment.io');
    const ctx = { connection: rudderstack.connectionSchema.parse({ write_key: 'k', base_url: '' }), connectionName: 'rs', mapping: testMapping('rudderstack'), options: rudderstack.optionsSchema.parse({}), log: testLog, shared: new Map() };
    await assert.rejects(rudderstack.connect(ctx), /RudderStack connection 'rs': base_url is empty/);
  } finally {
    if (saved.k === undefined) delete process.env.RUDDERSTACK_WRITE_KEY; else process.env.RUDDERSTACK_WRITE_KEY = saved.k;
    if (saved.u === undefined) delete process.env.RUDDERSTACK_DATA_PLANE_URL; else process.env.RUDDERSTACK_DATA_PLANE_URL = saved.u;
  }
});

test('check(): a busy CDP (503) lets the run go ahead; nothing listening is an error', async () => {
  const { createServer } = await import('node:http');
  const busy = createServer((_req, res) => { res.writeHead(503, { 'retry-after': '5' }).end('busy'); });
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const port = (busy.address() as { port: number }).port;
  const emu = await startCdpEmulator({ flavour: 'segment' });
  try {
    await (await cdpSession(emu, { baseUrl: `http://127.0.0.1:${port}` })).check();
    await new Promise<void>((r) => busy.close(() => r()));
    await assert.rejects((await cdpSession(emu, { baseUrl: `http://127.0.0.1:${port}` })).check(), (e: unknown) => e instanceof DestinationError && e.code === 'NETWORK');
  } finally {
    busy.close();
    await emu.close();
  }
});
