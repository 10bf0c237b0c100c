import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FollowUpItem, Payload, ReadBackRequest } from '../destinations/types.ts';
import { BudgetExhaustedError } from '../src/errors.ts';
import type { SalesforceEmulator } from './emulators/salesforce/index.ts';
import { contactMapping, contacts, openSession, remove, upsert, useOrgs } from './helpers/salesforce.ts';

const signal = new AbortController().signal;
const org = useOrgs();

describe('read-back through SOQL', () => {
  test('verified, drifted (with the fields) and missing, in chunks of IN-lists', async () => {
    const sf = await org();
    const s = await openSession(sf);
    const batch = contacts(1200);
    await s.deliver(batch, signal);
    const edited = sf.findBy('Contact', 'Customer_Id__c', 'C-000010')!;
    sf.editRecord('Contact', String(edited.Id), { RFM_Segment__c: 'Lost', RFM_Monetary__c: 1 });
    sf.deleteRecord('Contact', String(sf.findBy('Contact', 'Customer_Id__c', 'C-000020')!.Id));
    sf.resetCounters();
    const requests: ReadBackRequest[] = batch.map((c) => ({ key: c.key, expected: c.after!, destinationId: null }));
    const results = await s.readBack(requests, signal);
    const by = new Map(results.map((r) => [r.key, r]));
    assert.equal(results.filter((r) => r.status === 'verified').length, 1198);
    assert.deepEqual(by.get('C-000010')?.driftedFields, ['RFM_Segment__c', 'RFM_Monetary__c']);
    assert.equal(by.get('C-000010')?.actual?.RFM_Segment__c, 'Lost');
    assert.equal(by.get('C-000010')?.destinationId, edited.Id);
    assert.equal(by.get('C-000020')?.status, 'missing');
    assert.equal(sf.count('query'), 3, '1,200 keys in IN-lists of 500');
  });

  test('numbers, empty strings and dates compare as Salesforce stores them', async () => {
    const sf = await org();
    const s = await openSession(sf, { mapping: contactMapping({ fields: [
      { to: 'LastName', from: 'last_name' }, { to: 'RFM_Segment__c', from: 'rfm_segment' },
      { to: 'RFM_Monetary__c', from: 'monetary', transform: 'number' }, { to: 'RFM_Segment_Since__c', from: 'since', transform: 'date' },
      { to: 'RFM_Synced_At__c', from: 'at', transform: 'datetime' },
    ] }) });
    const after = { LastName: 'A', RFM_Segment__c: '', RFM_Monetary__c: '12.50', RFM_Segment_Since__c: '2024-03-01', RFM_Synced_At__c: '2024-03-01T10:00:00Z' };
    await s.deliver([upsert('K1', after)], signal);
    const [r] = await s.readBack([{ key: 'K1', expected: after, destinationId: null }], signal);
    assert.equal(r?.status, 'verified', JSON.stringify(r));
  });
});

describe('removals', () => {
  test('clear empties the mapped fields of records that left the model; unknown keys count as done', async () => {
    const sf = await org();
    const s = await openSession(sf, { mapping: contactMapping({ on_removed: 'clear', fields: [
      { to: 'RFM_Segment__c', from: 'rfm_segment' }, { to: 'RFM_Monetary__c', from: 'monetary', transform: 'number' },
    ] }) });
    sf.org.insert('Contact', { LastName: 'Kept', Customer_Id__c: 'C-1', RFM_Segment__c: 'Lost', RFM_Monetary__c: 3 });
    const res = await s.deliver([remove('C-1', { RFM_Segment__c: 'Lost', RFM_Monetary__c: 3 }), remove('C-404', { RFM_Segment__c: 'Lost' })], signal);
    assert.deepEqual(res.outcomes.map((o) => [o.key, o.status]), [['C-1', 'delivered'], ['C-404', 'delivered']]);
    const c = sf.findBy('Contact', 'Customer_Id__c', 'C-1')!;
    assert.deepEqual([c.LastName, c.RFM_Segment__c, c.RFM_Monetary__c], ['Kept', null, null]);
    assert.equal(sf.records('Contact').length, 1, 'clearing an unknown key created nothing');
  });

  test('delete (on_removed: delete) removes the records by Id', async () => {
    const sf = await org();
    const s = await openSession(sf, { mapping: contactMapping({ on_removed: 'delete' }) });
    await s.deliver(contacts(3), signal);
    const res = await s.deliver([remove('C-000002', contacts(1, 2)[0]!.after!)], signal);
    assert.equal(res.outcomes[0]?.status, 'delivered');
    assert.equal(sf.count('collections.delete'), 1);
    assert.deepEqual(sf.records('Contact').map((r) => r.Customer_Id__c).sort(), ['C-000001', 'C-000003']);
  });

  test('mode update never creates a contact', async () => {
    const sf = await org();
    const s = await openSession(sf, { mapping: contactMapping({ mode: 'update' }) });
    sf.org.insert('Contact', { LastName: 'Known', Customer_Id__c: 'C-000001' });
    const res = await s.deliver(contacts(2), signal);
    assert.deepEqual(res.outcomes.map((o) => [o.key, o.status, o.errorCode ?? '']), [['C-000001', 'delivered', ''], ['C-000002', 'failed', 'NOT_IN_SALESFORCE']]);
    assert.equal(sf.records('Contact').length, 1);
  });
});

describe('segments on open Cases: follow-up work', () => {
  const cases = { segment_from: 'RFM_Segment__c', segment_field: 'RFM_Segment__c', priority_field: 'Priority', priority: { Champions: 'High', 'At Risk': 'High', Lost: 'Low' } };
  const item = (key: string, destinationId: string, payload: Payload | null): FollowUpItem => ({ key, destinationId, payload });
  const kase = (sf: SalesforceEmulator, id: string) => sf.records('Case').find((r) => r.Id === id)!;

  test('deliver() writes no Case; apply() puts segment and priority on open Cases, one outcome per item; a rerun writes nothing', async () => {
    const sf = await org();
    const s = await openSession(sf, { mapping: contactMapping({ cases }) });
    await s.check();
    assert.deepEqual(await s.validateMapping(), []);
    assert.equal(s.followUps?.kind, 'cases');
    assert.equal((await openSession(sf)).followUps, null, 'no cases: block, no follow-up work');
    const first = await s.deliver(contacts(4), signal);
    const ids = new Map(first.outcomes.map((o) => [o.key, o.destinationId!]));
    const open1 = sf.org.insert('Case', { ContactId: ids.get('C-000001')!, Status: 'New', Subject: 'a' });
    const open2 = sf.org.insert('Case', { ContactId: ids.get('C-000002')!, Status: 'Working', Subject: 'b', Priority: 'Medium' });
    const closed = sf.org.insert('Case', { ContactId: ids.get('C-000002')!, Status: 'Closed', Subject: 'c', Priority: 'Medium' });
    const removed = sf.org.insert('Case', { ContactId: ids.get('C-000003')!, Status: 'New', RFM_Segment__c: 'Lost' });
    const other = sf.org.insert('Case', { Status: 'New', Subject: 'no contact' });
    const changed = [upsert('C-000001', { ...contacts(1)[0]!.after!, RFM_Segment__c: 'Champions' }), upsert('C-000002', { ...contacts(1, 2)[0]!.after!, RFM_Segment__c: 'Lost' })];
    sf.resetCounters();
    await s.deliver(changed, signal);
    assert.equal(sf.count('collections.update') + sf.count('query'), 0, 'the contacts only: Cases are follow-up work');
    assert.equal(kase(sf, open1).RFM_Segment__c, null);

    const items = [
      item('C-000001', ids.get('C-000001')!, changed[0]!.after!),
      item('C-000002', ids.get('C-000002')!, changed[1]!.after!),
      item('C-000003', ids.get('C-000003')!, null),
      item('C-000004', ids.get('C-000004')!, { LastName: 'no segment field' }),
    ];
    const outcomes = await s.followUps!.apply(items, signal);
    assert.deepEqual(outcomes.map((o) => [o.key, o.status]), [['C-000001', 'done'], ['C-000002', 'done'], ['C-000003', 'done'], ['C-000004', 'done']]);
    assert.deepEqual([kase(sf, open1).RFM_Segment__c, kase(sf, open1).Priority], ['Champions', 'High']);
    assert.deepEqual([kase(sf, open2).RFM_Segment__c, kase(sf, open2).Priority], ['Lost', 'Low']);
    assert.deepEqual([kase(sf, closed).RFM_Segment__c, kase(sf, closed).Priority], [null, 'Medium']);
    assert.equal(kase(sf, removed).RFM_Segment__c, null, 'a removed contact\'s open Cases lose the segment');
    assert.equal(kase(sf, other).RFM_Segment__c, null);
    assert.deepEqual([sf.count('query'), sf.count('collections.update')], [1, 1]);
    assert.deepEqual((await s.followUps!.apply(items, signal)).map((o) => o.status), ['done', 'done', 'done', 'done']);
    assert.deepEqual([sf.count('query'), sf.count('collections.update')], [2, 1], 'nothing to change on the Cases: a query, no write');
  });

  test('a Case Salesforce refuses fails its contact\'s follow-up with the code; the other contacts are done', async () => {
    const { defaultObjects } = await import('./emulators/salesforce/schema.ts');
    const objects = defaultObjects();
    const priority = objects.find((o) => o.name === 'Case')!.fields.find((f) => f.name === 'Priority')!;
    priority.restrictedPicklist = true;
    const sf = await org({ objects });
    const s = await openSession(sf, { mapping: contactMapping({ cases: { ...cases, priority: { Champions: 'Urgent', Lost: 'Low' } } }) });
    const ids = (await s.deliver(contacts(2), signal)).outcomes.map((o) => o.destinationId!);
    sf.org.insert('Case', { ContactId: ids[0]!, Status: 'New' });
    sf.org.insert('Case', { ContactId: ids[1]!, Status: 'New' });
    sf.lockRows([sf.records('Case')[1]!.Id as string], 1);
    const out = await s.followUps!.apply([item('A', ids[0]!, { RFM_Segment__c: 'Champions' }), item('B', ids[1]!, { RFM_Segment__c: 'Lost' })], signal);
    assert.deepEqual(out.map((o) => [o.key, o.status, o.errorCode, o.retryable]), [
      ['A', 'failed', 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', false], ['B', 'failed', 'UNABLE_TO_LOCK_ROW', true],
    ]);
    assert.match(out[0]!.errorMessage!, /^Case 500\w+: /);
    const again = await s.followUps!.apply([item('B', ids[1]!, { RFM_Segment__c: 'Lost' })], signal);
    assert.deepEqual(again.map((o) => o.status), ['done'], 'the engine\'s next apply lands once the lock is gone');
  });

  test('REQUEST_LIMIT_EXCEEDED during the Case writes: the affected follow-ups are deferred, and land once the limit lifts', async () => {
    const sf = await org({ dailyLimit: 100_000 });
    const s = await openSession(sf, { mapping: contactMapping({ cases }), connection: { budget_share: 1 } });
    const ids = (await s.deliver(contacts(4), signal)).outcomes.map((o) => o.destinationId!);
    for (let i = 0; i < 300; i++) sf.org.insert('Case', { ContactId: ids[i % 3]!, Status: 'New' });
    const items = ids.map((id, i) => item(`K${i}`, id, { RFM_Segment__c: 'Champions' }));
    // Another integration spends the rest of the day just as the first Case update arrives.
    sf.beforeNext('collections.update', () => sf.resetDailyUsage(sf.dailyLimit));
    const out = await s.followUps!.apply(items, signal);
    assert.deepEqual(out.map((o) => [o.key, o.status]), [['K0', 'deferred'], ['K1', 'deferred'], ['K2', 'deferred'], ['K3', 'done']], 'K3 has no open Case: nothing to write');
    assert.ok(out.slice(0, 3).every((o) => /^SALESFORCE_(REQUEST_LIMIT_EXCEEDED|BUDGET)/.test(o.errorCode!)), JSON.stringify(out));
    assert.ok(out.some((o) => o.errorCode === 'SALESFORCE_REQUEST_LIMIT_EXCEEDED'));
    assert.equal(sf.records('Case').filter((r) => r.RFM_Segment__c === 'Champions').length, 0);
    await assert.rejects(s.deliver(contacts(1, 50), signal), (err: unknown) => err instanceof BudgetExhaustedError, 'the session stays stopped for the day');

    sf.resetDailyUsage();
    await s.check();
    const later = await s.followUps!.apply(items.slice(0, 3), signal);
    assert.deepEqual(later.map((o) => o.status), ['done', 'done', 'done']);
    assert.equal(sf.records('Case').filter((r) => r.RFM_Segment__c === 'Champions' && r.Priority === 'High').length, 300);
  });

  test('the budget guard before the Case query defers every follow-up, never drops it', async () => {
    const sf = await org({ dailyLimit: 20 });
    const s = await openSession(sf, { mapping: contactMapping({ cases }) });
    const ids = (await s.deliver(contacts(2), signal)).outcomes.map((o) => o.destinationId!);
    sf.resetDailyUsage(15);
    await s.deliver(contacts(1, 9), signal); // the answer reports 16 of 20 used: 80% reached
    const out = await s.followUps!.apply(ids.map((id, i) => item(`K${i}`, id, { RFM_Segment__c: 'Lost' })), signal);
    assert.deepEqual(out.map((o) => [o.status, o.errorCode]), [['deferred', 'SALESFORCE_BUDGET_SHARE'], ['deferred', 'SALESFORCE_BUDGET_SHARE']]);
  });

  test('open_statuses instead of IsClosed, and the Case query follows nextRecordsUrl past 2,000 rows', async () => {
    const sf = await org();
    const s = await openSession(sf, { mapping: contactMapping({ cases: { ...cases, open_statuses: ['New'] } }) });
    const first = await s.deliver(contacts(2), signal);
    for (const o of first.outcomes) for (let i = 0; i < 1300; i++) sf.org.insert('Case', { ContactId: o.destinationId!, Status: i % 13 ? 'New' : 'Working' });
    sf.resetCounters();
    const out = await s.followUps!.apply(first.outcomes.map((o) => item(o.key, o.destinationId!, { RFM_Segment__c: 'Champions' })), signal);
    assert.deepEqual(out.map((o) => o.status), ['done', 'done']);
    const written = sf.records('Case').filter((r) => r.RFM_Segment__c === 'Champions');
    assert.equal(written.length, 2400);
    assert.ok(written.every((r) => r.Status === 'New' && r.Priority === 'High'));
    assert.equal(sf.count('query.more'), 1, '2,400 open Cases come in two pages');
    assert.equal(sf.count('collections.update'), 12, '2,400 Cases in calls of 200');
    assert.equal(sf.records('Case').filter((r) => r.Status === 'Working' && r.RFM_Segment__c !== null).length, 0);
  });

  test('changedSince: contacts whose open Cases were opened or changed at or after the instant, all pages, each once', async () => {
    const sf = await org();
    const s = await openSession(sf, { mapping: contactMapping({ cases }) });
    const ids = (await s.deliver(contacts(6), signal)).outcomes.map((o) => o.destinationId!);
    const old = '2026-01-01T00:00:00.000+0000';
    const backdate = (id: string) => sf.editRecord('Case', id, { CreatedDate: old, LastModifiedDate: old });
    backdate(sf.org.insert('Case', { ContactId: ids[0]!, Status: 'New' })); // untouched since: not returned
    const edited = sf.org.insert('Case', { ContactId: ids[1]!, Status: 'New' });
    backdate(edited);
    const closedLate = sf.org.insert('Case', { ContactId: ids[2]!, Status: 'New' });
    backdate(closedLate);
    backdate(sf.org.insert('Case', { Status: 'New' }));
    const since = new Date(Date.now() - 1);
    await new Promise((r) => setTimeout(r, 5));
    sf.editRecord('Case', edited, { Subject: 'customer wrote again' });
    sf.editRecord('Case', closedLate, { Status: 'Closed' });
    for (let i = 0; i < 2100; i++) sf.org.insert('Case', { ContactId: ids[3 + (i % 2)]!, Status: 'New' });
    sf.org.insert('Case', { Status: 'New', Subject: 'no contact' });
    sf.resetCounters();
    const changed = await s.followUps!.changedSince(since, signal);
    assert.deepEqual(changed.sort(), [ids[1]!, ids[3]!, ids[4]!].sort());
    assert.deepEqual([sf.count('query'), sf.count('query.more')], [1, 1]);
    assert.deepEqual(await s.followUps!.changedSince(new Date(Date.now() + 60_000), signal), []);
  });

  test('changedSince uses the configured open statuses', async () => {
    const sf = await org();
    const s = await openSession(sf, { mapping: contactMapping({ cases: { ...cases, open_statuses: ['Escalated'] } }) });
    const ids = (await s.deliver(contacts(2), signal)).outcomes.map((o) => o.destinationId!);
    const since = new Date(Date.now() - 1000);
    sf.org.insert('Case', { ContactId: ids[0]!, Status: 'New' });
    sf.org.insert('Case', { ContactId: ids[1]!, Status: 'Escalated' });
    assert.deepEqual(await s.followUps!.changedSince(since, signal), [ids[1]!]);
  });
});
