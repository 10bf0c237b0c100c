import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RecordOutcome } from '../destinations/types.ts';
import { BudgetExhaustedError, DestinationError } from '../src/errors.ts';
import type { SalesforceEmulator } from './emulators/salesforce/index.ts';
import { contactMapping, contacts, openSession, remove, upsert, useOrgs } from './helpers/salesforce.ts';

const signal = new AbortController().signal;
const org = useOrgs();

function byKey(outcomes: RecordOutcome[]): Map<string, RecordOutcome> {
  return new Map(outcomes.map((o) => [o.key, o]));
}

function statusCounts(outcomes: RecordOutcome[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of outcomes) out[o.status] = (out[o.status] ?? 0) + 1;
  return out;
}

describe('authentication', () => {
  test('client credentials, JWT bearer and a plain access token all reach the org', async () => {
    const sf = await org();
    for (const auth of ['client_credentials', 'jwt', 'access_token'] as const) {
      const s = await openSession(sf, { auth });
      await s.check();
    }
    assert.equal(sf.count('describe'), 3);
    assert.equal(sf.tokenGrants, 2, 'client credentials and JWT each asked the token endpoint once');
  });

  test('a JWT signed with the wrong key is refused with a clear error', async () => {
    const sf = await org({ auth: { jwtPublicKey: (await import('node:crypto')).generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString() } });
    await assert.rejects(openSession(sf, { auth: 'jwt' }), (err: unknown) => err instanceof DestinationError && err.code === 'AUTH_FAILED' && /invalid assertion/.test(err.message));
  });
});

describe('delivery through sObject Collections', () => {
  test('first delivery creates every contact in calls of at most 200, incremental updates them', async () => {
    const sf = await org();
    const s = await openSession(sf);
    await s.check();
    const first = await s.deliver(contacts(450), signal);
    assert.deepEqual(statusCounts(first.outcomes), { delivered: 450 });
    assert.ok(first.outcomes.every((o) => o.created === true && o.destinationId?.startsWith('003')));
    assert.equal(sf.count('collections.upsert'), 3);
    assert.ok(sf.log.filter((l) => l.endpoint === 'collections.upsert').every((l) => l.records <= 200));
    assert.equal(sf.records('Contact').length, 450);
    const c7 = sf.findBy('Contact', 'Customer_Id__c', 'C-000007')!;
    assert.deepEqual([c7.LastName, c7.RFM_Segment__c, c7.RFM_Recency_Days__c, c7.RFM_Monetary__c], ['Person 7', 'At Risk', 7, 9.59]);

    const changed = contacts(10, 1, () => 'Lost').map((c) => ({ ...c, op: 'update' as const }));
    const second = await s.deliver(changed, signal);
    assert.deepEqual(statusCounts(second.outcomes), { delivered: 10 });
    assert.ok(second.outcomes.every((o) => o.created === false));
    assert.equal(sf.records('Contact').length, 450, 'updates matched by external id, no duplicates');
    assert.equal(sf.findBy('Contact', 'Customer_Id__c', 'C-000007')!.RFM_Segment__c, 'Lost');
    assert.equal(sf.count('collections.upsert'), 4);
  });

  test('invalid records fail with Salesforce\'s codes and are not retried; the others go through', async () => {
    const sf = await org();
    const s = await openSession(sf);
    const good = contacts(5);
    const bad = [
      upsert('C-BAD-1', { LastName: null, RFM_Segment__c: 'Champions', RFM_Recency_Days__c: 1, RFM_Monetary__c: 1 }),
      upsert('C-BAD-2', { LastName: 'X', RFM_Segment__c: 'Super Fans', RFM_Recency_Days__c: 1, RFM_Monetary__c: 1 }),
      upsert('C-BAD-3', { LastName: 'Y'.repeat(81), RFM_Segment__c: 'Champions', RFM_Recency_Days__c: 1, RFM_Monetary__c: 1 }),
    ];
    const res = byKey((await s.deliver([...good.slice(0, 2), ...bad, ...good.slice(2)], signal)).outcomes);
    assert.deepEqual([res.get('C-BAD-1')?.errorCode, res.get('C-BAD-2')?.errorCode, res.get('C-BAD-3')?.errorCode],
      ['REQUIRED_FIELD_MISSING', 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', 'STRING_TOO_LONG']);
    assert.ok(bad.every((b) => res.get(b.key)?.status === 'failed' && res.get(b.key)?.retryable === false));
    assert.match(res.get('C-BAD-1')!.errorMessage!, /LastName/);
    assert.ok(good.every((g) => res.get(g.key)?.status === 'delivered'));
    assert.equal(sf.records('Contact').length, 5);
    assert.equal(sf.count('collections.upsert'), 1, 'validation errors are not re-sent');
  });

  test('the same external id twice in one call fails both records, as Salesforce does', async () => {
    const sf = await org();
    const s = await openSession(sf);
    const [a] = contacts(1);
    const res = await s.deliver([a!, { ...a!, payloadHash: 'other' }, ...contacts(1, 2)], signal);
    assert.deepEqual(res.outcomes.map((o) => [o.key, o.status, o.errorCode ?? '']), [
      ['C-000001', 'failed', 'DUPLICATE_VALUE'], ['C-000001', 'failed', 'DUPLICATE_VALUE'], ['C-000002', 'delivered', ''],
    ]);
    assert.equal(sf.findBy('Contact', 'Customer_Id__c', 'C-000001'), undefined);
  });
});

describe('Bulk API 2.0', () => {
  function stateOf(sf: SalesforceEmulator): Array<Record<string, unknown>> {
    return sf.records('Contact').map(({ Customer_Id__c, LastName, RFM_Segment__c, RFM_Recency_Days__c, RFM_Monetary__c }) => ({ Customer_Id__c, LastName, RFM_Segment__c, RFM_Recency_Days__c, RFM_Monetary__c }))
      .sort((a, b) => String(a.Customer_Id__c).localeCompare(String(b.Customer_Id__c)));
  }

  test('the Bulk and the Collections paths end in the same destination state', async () => {
    const viaBulk = await org();
    const viaCollections = await org();
    const bulk = await openSession(viaBulk, { options: { bulk_threshold: 2000 } });
    const coll = await openSession(viaCollections, { options: { bulk_threshold: 1_000_000 } });
    const first = contacts(2500);
    // The second batch changes values; an empty string and a null clear a field on both paths.
    const second = contacts(2000, 1, () => 'Champions');
    second[3] = upsert(second[3]!.key, { ...second[3]!.after!, RFM_Segment__c: '' });
    second[4] = upsert(second[4]!.key, { ...second[4]!.after!, RFM_Monetary__c: null });
    for (const batch of [first, second]) {
      const [a, b] = await Promise.all([bulk.deliver(batch, signal), coll.deliver(batch, signal)]);
      assert.deepEqual(statusCounts(a.outcomes), { delivered: batch.length });
      assert.deepEqual(statusCounts(b.outcomes), { delivered: batch.length });
      assert.deepEqual(a.outcomes.map((o) => [o.key, o.created]).sort(), b.outcomes.map((o) => [o.key, o.created]).sort());
    }
    assert.deepEqual(stateOf(viaBulk), stateOf(viaCollections));
    assert.equal(stateOf(viaBulk).length, 2500);
    assert.equal(viaBulk.findBy('Contact', 'Customer_Id__c', 'C-000004')!.RFM_Segment__c, null);
    assert.equal(viaBulk.findBy('Contact', 'Customer_Id__c', 'C-000005')!.RFM_Monetary__c, null);
    assert.equal(viaBulk.findBy('Contact', 'Customer_Id__c', 'C-000006')!.RFM_Segment__c, 'Champions');
    assert.equal(viaBulk.count('bulk.create'), 2);
    assert.equal(viaBulk.count('collections.upsert'), 0);
    assert.equal(viaCollections.count('bulk.create'), 0);
    assert.equal(viaCollections.count('collections.upsert'), 13 + 10);
  });

  test('failed Bulk rows come back per record by external id; unprocessed rows are retryable', async () => {
    const sf = await org();
    const s = await openSession(sf, { options: { bulk_threshold: 10 } });
    const batch = contacts(30);
    batch[5] = upsert(batch[5]!.key, { ...batch[5]!.after!, RFM_Segment__c: 'Super Fans' });
    batch[6] = upsert(batch[6]!.key, { ...batch[6]!.after!, LastName: null });
    const res = byKey((await s.deliver(batch, signal)).outcomes);
    assert.equal(res.get(batch[5]!.key)?.errorCode, 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST');
    assert.equal(res.get(batch[6]!.key)?.errorCode, 'REQUIRED_FIELD_MISSING');
    assert.equal([...res.values()].filter((o) => o.status === 'delivered').length, 28);
    assert.ok([...res.values()].filter((o) => o.status === 'delivered').every((o) => o.destinationId?.startsWith('003') && o.requestId?.startsWith('750')));

    sf.bulk.options.failNextJobAfterRows = 12;
    const again = (await s.deliver(contacts(30, 101), signal)).outcomes;
    assert.deepEqual(statusCounts(again), { delivered: 12, failed: 18 });
    assert.ok(again.filter((o) => o.status === 'failed').every((o) => o.errorCode === 'BULK_UNPROCESSED' && o.retryable === true));
  });

  test('row locks inside a Bulk job come back failed and retryable, for the engine to resend; no Collections re-send', async () => {
    const sf = await org();
    const s = await openSession(sf, { options: { bulk_threshold: 10 } });
    sf.lockRows(['C-000003', 'C-000004'], 1);
    const res = byKey((await s.deliver(contacts(20), signal)).outcomes);
    assert.deepEqual(statusCounts([...res.values()]), { delivered: 18, failed: 2 });
    for (const k of ['C-000003', 'C-000004']) {
      assert.deepEqual([res.get(k)?.errorCode, res.get(k)?.retryable, res.get(k)?.requestId?.startsWith('750')], ['UNABLE_TO_LOCK_ROW', true, true]);
    }
    assert.equal(sf.count('bulk.create'), 1);
    assert.equal(sf.count('collections.upsert'), 0);
  });

  test('a session that expires exactly at the CSV upload is refreshed and the CSV sent again: every record delivered', async () => {
    const sf = await org();
    const s = await openSession(sf, { auth: 'client_credentials', options: { bulk_threshold: 10 } });
    await s.check();
    sf.expireSessionsAt('bulk.upload');
    const res = await s.deliver(contacts(2500), signal);
    assert.deepEqual(statusCounts(res.outcomes), { delivered: 2500 });
    assert.deepEqual(sf.log.filter((l) => l.endpoint === 'bulk.upload').map((l) => l.status), [401, 201]);
    assert.equal(sf.tokenGrants, 2, 'one login, one refresh');
    assert.equal(sf.records('Contact').length, 2500);
  });

  test('a Bulk job still running at bulk_poll_timeout_ms: its records are in doubt with the job id, and the job is aborted', async () => {
    // The emulator would pick the job up after 300 ms and process it after 600 ms; the poll gives up at 100 ms.
    const sf = await org({ bulkProcessingMs: 300 });
    const s = await openSession(sf, { options: { bulk_threshold: 5, bulk_poll_timeout_ms: 100 } });
    const res = await s.deliver(contacts(10), signal);
    const [job] = [...sf.bulk.jobs.values()];
    assert.deepEqual(statusCounts(res.outcomes), { in_doubt: 10 });
    assert.ok(res.outcomes.every((o) => o.requestId === job!.id && o.errorCode === 'BULK_IN_DOUBT' && /bulk_poll_timeout_ms/.test(o.errorMessage!)), JSON.stringify(res.outcomes[0]));
    assert.deepEqual([...sf.bulk.jobs.values()].map((j) => j.state), ['Aborted']);
    // Past the time the job would have been processed: still aborted, and nothing written.
    await new Promise((r) => setTimeout(r, 900));
    assert.deepEqual([...sf.bulk.jobs.values()].map((j) => j.state), ['Aborted']);
    assert.equal(sf.records('Contact').length, 0, 'the aborted job wrote nothing');
    assert.equal(sf.count('bulk.create'), 1, 'one job: nothing re-sent inside deliver()');
  });
});

describe('retries, sessions and the daily budget', () => {
  test('UNABLE_TO_LOCK_ROW fails the record as retryable, sent once; the other records of the call land', async () => {
    const sf = await org();
    const s = await openSession(sf);
    sf.lockRows(['C-000003'], 1);
    const res = byKey((await s.deliver(contacts(5), signal)).outcomes);
    assert.deepEqual([res.get('C-000003')?.status, res.get('C-000003')?.errorCode, res.get('C-000003')?.retryable], ['failed', 'UNABLE_TO_LOCK_ROW', true]);
    assert.equal(statusCounts([...res.values()]).delivered, 4);
    assert.deepEqual(sf.log.filter((l) => l.endpoint === 'collections.upsert').map((l) => l.records), [5], 'no re-send inside deliver()');
    // The engine's resend of the record lands once the lock is gone.
    assert.equal((await s.deliver(contacts(1, 3), signal)).outcomes[0]?.status, 'delivered');
  });

  test('a persistent 500 costs exactly one call per deliver(): thrown as retryable for the engine, never retried inside', async () => {
    const sf = await org();
    const s = await openSession(sf);
    await s.check();
    sf.resetCounters();
    sf.failNext(500, 10, 'collections.upsert');
    for (let i = 1; i <= 3; i++) {
      await assert.rejects(s.deliver(contacts(3, 10), signal), (err: unknown) => err instanceof DestinationError && err.retryable && !err.inDoubt && err.code === 'SALESFORCE_UNKNOWN_EXCEPTION');
      assert.equal(sf.log.length, i, sf.log.map((l) => `${l.method} ${l.endpoint} ${l.status}`).join('\n'));
    }
    assert.ok(sf.log.every((l) => l.endpoint === 'collections.upsert' && l.status === 500));
  });

  test('a batch of several calls reports each call by its own answer: accepted calls delivered, a failed one retryable', async () => {
    const sf = await org();
    const s = await openSession(sf, { options: { collections_concurrency: 1 } });
    sf.failNext(503, 1, 'collections.upsert');
    const res = await s.deliver(contacts(450), signal);
    assert.deepEqual(statusCounts(res.outcomes), { delivered: 250, failed: 200 });
    assert.ok(res.outcomes.filter((o) => o.status === 'failed').every((o) => o.retryable && o.errorCode === 'SALESFORCE_SERVER_UNAVAILABLE'));
    assert.equal(sf.count('collections.upsert'), 3);
  });

  test('a reset after the request reached the org is in doubt; a refused connection is retryable and not in doubt', async () => {
    const sf = await org();
    const s = await openSession(sf);
    await s.check();
    sf.resetNext(1, 'collections.upsert');
    await assert.rejects(s.deliver(contacts(3), signal), (err: unknown) => err instanceof DestinationError && err.code === 'NETWORK' && err.retryable && err.inDoubt);
    assert.equal(sf.records('Contact').length, 3, 'the org applied what it received');
    assert.equal(sf.count('collections.upsert'), 1);
    await sf.close();
    await assert.rejects(s.deliver(contacts(3, 10), signal), (err: unknown) => err instanceof DestinationError && err.code === 'NETWORK' && err.retryable && !err.inDoubt && /ECONNREFUSED/.test(err.message));
  });

  test('schema reads throw classified errors, once, so the engine can retry them: a 503 on describe, then it works', async () => {
    const sf = await org();
    const s = await openSession(sf);
    sf.failNext(503, 1, 'describe');
    await assert.rejects(s.check(), (err: unknown) => err instanceof DestinationError && err.retryable && err.code === 'SALESFORCE_SERVER_UNAVAILABLE');
    assert.equal(sf.count('describe'), 1, 'jsforce does not retry the GET behind the engine\'s back');
    sf.resetNext(1, 'describe');
    await assert.rejects(s.check(), (err: unknown) => err instanceof DestinationError && err.code === 'NETWORK' && err.retryable && !err.inDoubt, 'a read leaves nothing in doubt');
    await s.check();
    assert.deepEqual(await s.validateMapping(), []);
  });

  test('a session expiring mid-run is refreshed and the run goes on', async () => {
    const sf = await org();
    const s = await openSession(sf, { auth: 'client_credentials' });
    sf.expireSessionsAfter(2);
    assert.deepEqual(statusCounts((await s.deliver(contacts(1000), signal)).outcomes), { delivered: 1000 });
    assert.equal(sf.tokenGrants, 2, 'one login, one refresh');
    assert.equal(sf.records('Contact').length, 1000);
    assert.ok(sf.log.some((l) => l.status === 401));

    const jwt = await openSession(sf, { auth: 'jwt' });
    sf.expireSessions();
    assert.deepEqual(statusCounts((await jwt.deliver(contacts(3, 2000), signal)).outcomes), { delivered: 3 });
  });

  test('a plain access token cannot be refreshed: a clear error, not a retry loop', async () => {
    const sf = await org();
    const s = await openSession(sf, { auth: 'access_token' });
    sf.expireSessions();
    await assert.rejects(s.check(), (err: unknown) => err instanceof DestinationError && err.code === 'SALESFORCE_SESSION_INVALID' && !err.retryable && /fresh access_token/.test(err.message));
  });

  test('REQUEST_LIMIT_EXCEEDED stops cleanly: what was sent is delivered, the rest deferred, then BudgetExhaustedError', async () => {
    const sf = await org({ dailyLimit: 1000 });
    const s = await openSession(sf, { connection: { budget_share: 1 }, options: { collections_concurrency: 1 } });
    await s.check();
    sf.resetDailyUsage(998);
    const res = await s.deliver(contacts(1000), signal);
    assert.deepEqual(statusCounts(res.outcomes), { delivered: 400, deferred: 600 });
    assert.equal(sf.records('Contact').length, 400);
    await assert.rejects(s.deliver(contacts(5, 5000), signal), (err: unknown) => err instanceof BudgetExhaustedError);
    assert.equal(sf.used, 1000);
  });

  test('the budget guard stops at 80% of the daily limit, shared by sessions of the same org', async () => {
    const sf = await org({ dailyLimit: 20 });
    const shared = new Map<string, unknown>();
    const a = await openSession(sf, { shared, options: { collections_concurrency: 1, bulk_threshold: 100_000 } });
    await a.check();
    const res = await a.deliver(contacts(4000), signal);
    assert.equal(sf.used, 16, 'never past 80% of 20');
    assert.deepEqual(statusCounts(res.outcomes), { delivered: 15 * 200, deferred: 1000 });
    assert.equal(sf.records('Contact').length, 3000);
    const b = await openSession(sf, { shared, mapping: contactMapping({ name: 'other' }) });
    await assert.rejects(b.deliver(contacts(1, 9000), signal), (err: unknown) => err instanceof BudgetExhaustedError && /80%/.test(err.message));
    assert.equal(sf.used, 16);
  });
});

describe('edges', () => {
  test('an unknown sObject or an API version the org lacks is named in the error', async () => {
    const sf = await org({ maxApiVersion: 61 });
    const s = await openSession(sf);
    await assert.rejects(s.check(), (err: unknown) => err instanceof DestinationError && err.code === 'SALESFORCE_OBJECT_NOT_FOUND' && /'Contact' at API version 62\.0/.test(err.message));
  });

  test('any sObject: Cases matched by an external id field of their own', async () => {
    const { defaultObjects, field } = await import('./emulators/salesforce/schema.ts');
    const objects = defaultObjects();
    objects.find((o) => o.name === 'Case')!.fields.push(field('Ticket_Ref__c', 'string', { length: 40, externalId: true, unique: true }));
    const sf = await org({ objects });
    const mapping = contactMapping({ destination: { connection: 'salesforce', object: 'Case', match_key: 'Ticket_Ref__c', options: {} }, fields: [{ to: 'Subject', from: 's' }, { to: 'Priority', from: 'p' }] });
    const s = await openSession(sf, { mapping });
    assert.deepEqual(await s.validateMapping(), []);
    const res = await s.deliver([upsert('T-1', { Subject: 'Refund', Priority: 'High' })], signal);
    assert.equal(res.outcomes[0]?.status, 'delivered');
    assert.equal(sf.findBy('Case', 'Ticket_Ref__c', 'T-1')?.Subject, 'Refund');
  });
});
