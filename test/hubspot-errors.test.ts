import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { BudgetExhaustedError, DestinationError } from '../src/errors.ts';
import { startHubSpotEmulator, type HubSpotEmulator } from './emulators/hubspot/server.ts';
import { change, connect, contact, prepareContacts, testMapping } from './helpers/hubspot.ts';

const signal = () => new AbortController().signal;

/**
 * The connector classifies and never retries: the engine retries the first schema read, setup and delivery
 * alike from these errors (retryable, retryAfterMs, inDoubt, BudgetExhaustedError).
 */
describe('HubSpot errors are classified, not retried, from the first schema read on', () => {
  let hs: HubSpotEmulator;
  beforeEach(async () => {
    hs = await startHubSpotEmulator();
    prepareContacts(hs);
  });
  afterEach(() => hs.close());

  const failure = (p: Promise<unknown>) => p.then(() => assert.fail('expected a failure'), (e: unknown) => {
    assert.ok(e instanceof DestinationError, String(e));
    return e;
  });
  const propertyReads = () => hs.count('GET', '/crm/v3/properties/contacts');

  it('a 503 on the first schema read is a retryable error after one request, and the next check() reads again', async () => {
    const s = await connect(hs);
    hs.scriptFaults('unavailable');
    const e = await failure(s.check());
    assert.deepEqual([e.code, e.retryable, e.inDoubt, e.status], ['HUBSPOT_SERVER_ERROR', true, false, 503]);
    assert.equal(propertyReads(), 1, 'the SDK did not retry');
    await s.check();
    assert.equal(propertyReads(), 2);
  });

  it('a connection reset on the schema read is retryable and in doubt; a timeout too', async () => {
    const s = await connect(hs, testMapping(), new Map(), { request_timeout_ms: 200 });
    hs.scriptFaults('reset_before');
    const reset = await failure(s.check());
    assert.deepEqual([reset.code, reset.retryable, reset.inDoubt], ['HUBSPOT_NETWORK', true, true]);
    hs.setFaults({ timeoutMs: 5_000 });
    hs.scriptFaults('timeout');
    const late = await failure(s.validateMapping());
    assert.deepEqual([late.code, late.retryable, late.inDoubt], ['HUBSPOT_TIMEOUT', true, true]);
    assert.equal(propertyReads(), 2);
  });

  it('connection refused is retryable and certainly not applied', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const s = await connect({ url: `http://127.0.0.1:${port}`, token: hs.token });
    const e = await failure(s.check());
    assert.deepEqual([e.code, e.retryable, e.inDoubt], ['HUBSPOT_UNREACHABLE', true, false]);
    assert.match(e.message, /ECONNREFUSED.*nothing was sent/);
  });

  it('a TEN_SECONDLY 429 on the schema read is retryable after the window the headers give; a DAILY one is BudgetExhaustedError', async () => {
    hs.setLimits({ tenSecondly: 100, timeScale: 10 });
    const s = await connect(hs);
    hs.scriptFaults('rate_limited');
    const e = await failure(s.check());
    assert.deepEqual([e.code, e.retryable, e.retryAfterMs], ['HUBSPOT_RATE_LIMIT_TEN_SECONDLY', true, 1000]);
    const d = await connect(hs, testMapping(), new Map());
    hs.scriptFaults('daily_limited');
    await assert.rejects(d.check(), (x: unknown) => x instanceof BudgetExhaustedError && x.retryable === false);
    assert.equal(propertyReads(), 2);
  });

  it('setup --apply: a create whose answer is lost is in doubt; run again, it finds the property and finishes', async () => {
    const fresh = await startHubSpotEmulator();
    try {
      const s = await connect(fresh);
      // properties read, then the first create is applied but its answer lost
      fresh.scriptFaults('none', 'reset_after');
      const e = await failure(s.setup!(true));
      assert.deepEqual([e.retryable, e.inDoubt], [true, true]);
      assert.ok(fresh.crm.store('contacts')!.properties.has('user_id'), 'the create landed');
      const again = await s.setup!(true);
      assert.ok(again.lines.includes('exists: contacts.user_id (string)') || again.lines.some((l) => l.startsWith('exists: contacts.user_id')), again.lines.join('\n'));
      assert.ok(again.lines.some((l) => l.startsWith('created: contacts.rfm_segment')));
      await s.check();
    } finally {
      await fresh.close();
    }
  });

  it('setup --apply after a create that landed meanwhile (409) reports it as existing instead of failing', async () => {
    const fresh = await startHubSpotEmulator();
    try {
      const s = await connect(fresh);
      await s.setup!(false); // caches the schema without user_id
      fresh.defineProperty('contacts', { name: 'user_id', type: 'string', hasUniqueValue: true });
      const r = await s.setup!(true);
      assert.ok(r.lines.includes('exists: contacts.user_id (created by an earlier attempt or meanwhile)'), r.lines.join('\n'));
      assert.equal(fresh.count('POST', '/crm/v3/properties/contacts', 409), 1);
    } finally {
      await fresh.close();
    }
  });

  it('a batch upsert whose answer is lost throws an in-doubt retryable error for the batch (no retry inside)', async () => {
    const s = await connect(hs);
    hs.scriptFaults('reset_after');
    const e = await failure(s.deliver([change('a', contact(1)), change('b', contact(2))], signal()));
    assert.deepEqual([e.retryable, e.inDoubt], [true, true]);
    assert.equal(hs.count('POST', '/crm/v3/objects/contacts/batch/upsert'), 1);
    assert.equal(hs.records('contacts').length, 2, 'HubSpot applied it');
  });
});
