import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { BudgetExhaustedError, DestinationError } from '../src/errors.ts';
import { startHubSpotEmulator, type HubSpotEmulator } from './emulators/hubspot/server.ts';
import { change, connect, contact, deliverLikeEngine, prepareContacts, testMapping } from './helpers/hubspot.ts';

const signal = () => new AbortController().signal;
const today = () => new Date().toISOString().slice(0, 10);

describe('HubSpot destination: delivery through the real SDK', () => {
  let hs: HubSpotEmulator;
  beforeEach(async () => {
    hs = await startHubSpotEmulator();
    prepareContacts(hs);
  });
  afterEach(() => hs.close());

  it('first delivery upserts every contact in batches of at most 100 and reports HubSpot ids and creation', async () => {
    const s = await connect(hs);
    await s.check();
    const changes = Array.from({ length: 250 }, (_, i) => change(`u${i}`, contact(i)));
    const outcomes: Awaited<ReturnType<typeof s.deliver>>['outcomes'] = [];
    for (let i = 0; i < changes.length; i += 100) outcomes.push(...(await s.deliver(changes.slice(i, i + 100), signal())).outcomes);
    assert.equal(outcomes.filter((o) => o.status === 'delivered' && o.created === true).length, 250);
    assert.equal(hs.records('contacts').length, 250);
    assert.equal(hs.count('POST', '/crm/v3/objects/contacts/batch/upsert'), 3);
    assert.ok(hs.requests.every((r) => r.inputs <= 100));
    const u7 = hs.find('contacts', 'user_id', 'u7')!;
    assert.equal(outcomes.find((o) => o.key === 'u7')!.destinationId, u7.id);
    assert.match(outcomes.find((o) => o.key === 'u7')!.requestId!, /^[0-9a-f-]{36}$/, 'the correlation id, for HubSpot support');
    assert.equal(u7.properties.rfm_segment, 'Champions');
    assert.equal(u7.properties.rfm_monetary, '73.5');
    assert.equal(u7.properties.rfm_segment_since, today());
    assert.match(u7.properties.segsync_last_run!, /^\d{4}-/);
  });

  it('incremental delivery updates only what changed, in place, and stamps the segment date only when the segment moved', async () => {
    const s = await connect(hs);
    await s.deliver(Array.from({ length: 10 }, (_, i) => change(`u${i}`, contact(i))), signal());
    hs.edit('contacts', hs.find('contacts', 'user_id', 'u1')!.id, 'rfm_segment_since', '2020-01-01');
    hs.edit('contacts', hs.find('contacts', 'user_id', 'u2')!.id, 'rfm_segment_since', '2020-01-01');
    const before = hs.count('POST', '/crm/v3/objects/contacts/batch/upsert');
    const r = await s.deliver([change('u1', contact(1, 'At Risk'), contact(1)), change('u2', { ...contact(2), rfm_monetary: 999 }, contact(2))], signal());
    assert.deepEqual(r.outcomes.map((o) => [o.key, o.status, o.created]), [['u1', 'delivered', false], ['u2', 'delivered', false]]);
    assert.equal(hs.count('POST', '/crm/v3/objects/contacts/batch/upsert') - before, 1);
    assert.equal(hs.records('contacts').length, 10);
    assert.equal(hs.find('contacts', 'user_id', 'u1')!.properties.rfm_segment, 'At Risk');
    assert.equal(hs.find('contacts', 'user_id', 'u1')!.properties.rfm_segment_since, today());
    assert.equal(hs.find('contacts', 'user_id', 'u2')!.properties.rfm_segment_since, '2020-01-01');
    assert.equal(hs.find('contacts', 'user_id', 'u2')!.properties.rfm_monetary, '999');
  });

  it('de-duplicates keys inside a batch (the last change wins) so HubSpot never sees an id twice', async () => {
    const s = await connect(hs);
    const r = await s.deliver([change('d1', contact(1, 'Promising')), change('d2', contact(2)), change('d1', contact(1, 'Hibernating'))], signal());
    assert.equal(r.outcomes.length, 3);
    assert.ok(r.outcomes.every((o) => o.status === 'delivered'));
    assert.equal(hs.requests.at(-1)!.inputs, 2);
    assert.equal(hs.find('contacts', 'user_id', 'd1')!.properties.rfm_segment, 'Hibernating');
  });

  it('a record with an invalid value fails alone, without retry; the others are delivered', async () => {
    const s = await connect(hs);
    const changes = Array.from({ length: 50 }, (_, i) => change(`v${i}`, contact(i, i === 10 || i === 20 ? 'Whales' : 'Champions')));
    const r = await s.deliver(changes, signal());
    const bad = r.outcomes.filter((o) => o.status === 'failed');
    assert.deepEqual(bad.map((o) => o.key).sort(), ['v10', 'v20']);
    assert.ok(bad.every((o) => o.retryable === false && o.errorCode === 'INVALID_OPTION' && /Whales/.test(o.errorMessage!)));
    assert.equal(hs.records('contacts').length, 48);
    assert.equal(hs.count('POST', '/crm/v3/objects/contacts/batch/upsert'), 1);
  });

  it('a property HubSpot does not know fails only the records that carry it (HubSpot rejects the whole batch)', async () => {
    const s = await connect(hs);
    const changes = Array.from({ length: 20 }, (_, i) => change(`p${i}`, i === 3 ? { ...contact(i), no_such_property: 'x' } : contact(i)));
    const r = await s.deliver(changes, signal());
    assert.deepEqual(r.outcomes.filter((o) => o.status === 'failed').map((o) => [o.key, o.errorCode, o.retryable]), [['p3', 'PROPERTY_DOESNT_EXIST', false]]);
    assert.equal(hs.records('contacts').length, 19);
    assert.deepEqual(hs.requests.filter((x) => x.path.endsWith('/upsert')).map((x) => [x.status, x.inputs]), [[400, 20], [200, 19]]);
  });

  it('a ten-secondly storm: every record arrives, 429s are retried and stay rare once the budget has read the headers', async () => {
    // The account allows 6 calls per (scaled) 10 s window = 1 s, while the config says tier free (100): eight
    // workers start at once, so the first window overshoots; then the budget believes the headers. A neighbour
    // app eats part of a window midway.
    hs.setLimits({ tenSecondly: 6, timeScale: 10 });
    const shared = new Map<string, unknown>();
    const sessions = await Promise.all([connect(hs, testMapping(), shared), connect(hs, testMapping({ name: 'second' }), shared)]);
    const batches = Array.from({ length: 24 }, (_, b) => Array.from({ length: 10 }, (_, i) => change(`s${b}-${i}`, contact(i))));
    const started = Date.now();
    let next = 0;
    const worker = async (w: number) => {
      const out = [];
      while (next < batches.length) {
        const b = batches[next++]!;
        if (next === 15) hs.consume(4);
        out.push(...(await deliverLikeEngine(sessions[w % 2]!, b)).outcomes);
      }
      return out;
    };
    const outcomes = (await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(worker))).flat();
    assert.equal(outcomes.filter((o) => o.status === 'delivered').length, 240);
    assert.equal(hs.records('contacts').length, 240);
    const upserts = hs.requests.filter((r) => r.path.endsWith('/upsert'));
    const limited = upserts.filter((r) => r.status === 429).length;
    assert.ok(limited >= 2, `the first window must overshoot (the budget starts from the tier): ${limited}`);
    assert.ok(limited <= 12, `429s after the budget learnt the limit: ${limited}`);
    // 24 calls at 6 per second cannot take less than 3 s.
    assert.ok(Date.now() - started >= 3_000);
  });

  it('the daily limit ends delivery with BudgetExhaustedError; the next day the rest goes through', async () => {
    hs.setLimits({ daily: 4 });
    const shared = new Map<string, unknown>();
    const s = await connect(hs, testMapping(), shared);
    const batches = Array.from({ length: 6 }, (_, b) => Array.from({ length: 5 }, (_, i) => change(`d${b}-${i}`, contact(i))));
    let delivered = 0;
    let stoppedAt = -1;
    for (const [n, b] of batches.entries()) {
      try {
        delivered += (await s.deliver(b, signal())).outcomes.filter((o) => o.status === 'delivered').length;
      } catch (err) {
        assert.ok(err instanceof BudgetExhaustedError, String(err));
        assert.equal(err.retryable, false);
        stoppedAt = n;
        break;
      }
    }
    assert.equal(stoppedAt, 4);
    assert.equal(delivered, 20);
    assert.equal(hs.records('contacts').length, 20);
    // Same process, still the same day: the shared budget refuses without calling HubSpot.
    const calls = hs.requests.length;
    await assert.rejects(s.deliver(batches[4]!, signal()), BudgetExhaustedError);
    assert.equal(hs.requests.length, calls);
    hs.nextDay();
    (shared.values().next().value as { probeEveryMs: number }).probeEveryMs = 0;
    for (const b of batches.slice(4)) await s.deliver(b, signal());
    assert.equal(hs.records('contacts').length, 30);
  });

  it('5xx answers, timeouts and connection resets are retried; every contact exists exactly once with its final values', async () => {
    hs.setFaults({ seed: 42, serverError: 0.15, reset: 0.15, timeout: 0.05, timeoutMs: 2_000 });
    const s = await connect(hs, testMapping(), new Map(), { request_timeout_ms: 300 });
    const changes = Array.from({ length: 400 }, (_, i) => change(`f${i}`, contact(i, i % 2 ? 'At Risk' : 'Champions')));
    for (let i = 0; i < changes.length; i += 20) {
      const r = await deliverLikeEngine(s, changes.slice(i, i + 20), { attempts: 12 });
      assert.ok(r.outcomes.every((o) => o.status === 'delivered'));
    }
    const faults = hs.requests.filter((r) => r.fault !== 'none').map((r) => r.fault);
    assert.ok(faults.includes('server_error') && faults.includes('reset_after') && faults.includes('timeout'), faults.join(','));
    assert.equal(hs.records('contacts').length, 400);
    assert.equal(new Set(hs.records('contacts').map((r) => r.properties.user_id)).size, 400);
    assert.equal(hs.find('contacts', 'user_id', 'f7')!.properties.rfm_segment, 'At Risk');
  });

  it('an unknown token fails check() with a clear, non-retryable error', async () => {
    const s = await connect(hs, testMapping(), new Map(), { access_token: 'wrong' });
    await assert.rejects(s.check(), (e: Error & { code: string; retryable: boolean }) => e.code === 'HUBSPOT_UNAUTHORIZED' && !e.retryable && /access_token/.test(e.message) && !e.message.includes('wrong'));
  });

  it('mode update never creates: unknown keys fail as not in HubSpot', async () => {
    const s = await connect(hs);
    await s.deliver([change('m1', contact(1))], signal());
    const u = await connect(hs, testMapping({ mode: 'update' }));
    const r = await u.deliver([change('m1', contact(1, 'Promising'), contact(1)), change('m2', contact(2))], signal());
    assert.deepEqual(r.outcomes.map((o) => [o.key, o.status, o.errorCode]), [['m1', 'delivered', undefined], ['m2', 'failed', 'NOT_IN_HUBSPOT']]);
    assert.equal(hs.records('contacts').length, 1);
    assert.equal(hs.find('contacts', 'user_id', 'm1')!.properties.rfm_segment, 'Promising');
  });

  it('removals: clear empties the mapped properties; delete archives, only when the mapping opts in', async () => {
    const s = await connect(hs, testMapping({ on_removed: 'clear' }));
    await s.deliver([change('r1', contact(1)), change('r2', contact(2))], signal());
    const r = await s.deliver([change('r1', null, contact(1))], signal());
    assert.equal(r.outcomes[0]!.status, 'delivered');
    const r1 = hs.find('contacts', 'user_id', 'r1')!;
    assert.equal(r1.properties.rfm_segment, '');
    assert.equal(r1.properties.rfm_recency_score, '');
    const d = await connect(hs, testMapping({ on_removed: 'delete' }));
    const out = await d.deliver([change('r2', null, contact(2)), change('gone', null, contact(3))], signal());
    assert.ok(out.outcomes.every((o) => o.status === 'delivered'));
    assert.equal(hs.find('contacts', 'user_id', 'r2'), undefined);
    assert.equal(hs.count('POST', '/crm/v3/objects/contacts/batch/archive'), 1);
    assert.equal(hs.records('contacts').length, 1);
  });
  it('a batch sent as several requests reports each by its own answer: accepted upserts stay delivered when the removals after them fail', async () => {
    const s = await connect(hs, testMapping({ on_removed: 'clear' }));
    await s.deliver([change('x1', contact(1)), change('x2', contact(2)), change('x3', contact(3))], signal());
    const batch = () => [change('n1', contact(4)), change('n2', contact(5)), change('x1', null, contact(1))];
    const outcomes = async () => new Map((await s.deliver(batch(), signal())).outcomes.map((o) => [o.key, o]));
    hs.scriptFaults('none', 'unavailable'); // the upsert passes, the removal's batch update answers 503
    const failed = await outcomes();
    assert.deepEqual([failed.get('n1')!.status, failed.get('n2')!.status], ['delivered', 'delivered']);
    assert.deepEqual([failed.get('x1')!.status, failed.get('x1')!.errorCode, failed.get('x1')!.retryable], ['failed', 'HUBSPOT_SERVER_ERROR', true]);
    hs.scriptFaults('none', 'reset_after'); // applied, answer lost
    const doubt = await outcomes();
    assert.deepEqual([doubt.get('n1')!.status, doubt.get('x1')!.status], ['delivered', 'in_doubt']);
    assert.equal(hs.find('contacts', 'user_id', 'x1')!.properties.rfm_segment, '', 'the lost answer was applied');
    hs.scriptFaults('none', 'daily_limited');
    const spent = await outcomes();
    assert.deepEqual([spent.get('n2')!.status, spent.get('x1')!.status], ['delivered', 'deferred']);
    // Nothing answered yet: the whole call failed, as before.
    hs.scriptFaults('unavailable');
    const fresh = await connect(hs, testMapping({ on_removed: 'clear' }));
    await assert.rejects(fresh.deliver(batch(), signal()), (e: unknown) => e instanceof DestinationError && e.retryable);
  });
});
