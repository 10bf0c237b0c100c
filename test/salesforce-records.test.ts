import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ReadBackRequest } from '../destinations/types.ts';
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

describe('segments on open Cases', () => {
  const cases = { segment_from: 'RFM_Segment__c', segment_field: 'RFM_Segment__c', priority_field: 'Priority', priority: { Champions: 'High', 'At Risk': 'High', Lost: 'Low' } };

  test('open Cases of synced contacts get the segment and priority; closed ones are left alone; a rerun writes nothing', async () => {
    const sf = await org();
    const s = await openSession(sf, { mapping: contactMapping({ cases }) });
    await s.check();
    assert.deepEqual(await s.validateMapping(), []);
    const first = await s.deliver(contacts(3), signal);
    const ids = new Map(first.outcomes.map((o) => [o.key, o.destinationId!]));
    const open1 = sf.org.insert('Case', { ContactId: ids.get('C-000001')!, Status: 'New', Subject: 'a' });
    const open2 = sf.org.insert('Case', { ContactId: ids.get('C-000002')!, Status: 'Working', Subject: 'b', Priority: 'Medium' });
    const closed = sf.org.insert('Case', { ContactId: ids.get('C-000002')!, Status: 'Closed', Subject: 'c', Priority: 'Medium' });
    const other = sf.org.insert('Case', { Status: 'New', Subject: 'no contact' });
    const changed = [upsert('C-000001', { ...contacts(1)[0]!.after!, RFM_Segment__c: 'Champions' }), upsert('C-000002', { ...contacts(1, 2)[0]!.after!, RFM_Segment__c: 'Lost' })];
    await s.deliver(changed, signal);
    const kase = (id: string) => sf.records('Case').find((r) => r.Id === id)!;
    assert.deepEqual([kase(open1).RFM_Segment__c, kase(open1).Priority], ['Champions', 'High']);
    assert.deepEqual([kase(open2).RFM_Segment__c, kase(open2).Priority], ['Lost', 'Low']);
    assert.deepEqual([kase(closed).RFM_Segment__c, kase(closed).Priority], [null, 'Medium']);
    assert.equal(kase(other).RFM_Segment__c, null);
    assert.equal(sf.count('collections.update'), 1);
    await s.deliver(changed, signal);
    assert.equal(sf.count('collections.update'), 1, 'nothing to change on the Cases: no write');
  });

  test('open_statuses instead of IsClosed, and the Case query follows nextRecordsUrl past 2,000 rows', async () => {
    const sf = await org();
    const s = await openSession(sf, { mapping: contactMapping({ cases: { ...cases, open_statuses: ['New'] } }) });
    const first = await s.deliver(contacts(2), signal);
    for (const o of first.outcomes) for (let i = 0; i < 1300; i++) sf.org.insert('Case', { ContactId: o.destinationId!, Status: i % 13 ? 'New' : 'Working' });
    sf.resetCounters();
    await s.deliver(contacts(2, 1, () => 'Champions'), signal);
    const written = sf.records('Case').filter((r) => r.RFM_Segment__c === 'Champions');
    assert.equal(written.length, 2400);
    assert.ok(written.every((r) => r.Status === 'New' && r.Priority === 'High'));
    assert.equal(sf.count('query.more'), 1, '2,400 open Cases come in two pages');
    assert.equal(sf.count('collections.update'), 12, '2,400 Cases in calls of 200');
    assert.equal(sf.records('Case').filter((r) => r.Status === 'Working' && r.RFM_Segment__c !== null).length, 0);
  });
});
