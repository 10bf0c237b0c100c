import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERASERS } from '../src/erasure/erasers.ts';
import { Settings } from '../src/config/settings.ts';
import { connectionFor, contactMapping, openSession, upsert, useOrgs } from './helpers/salesforce.ts';

const org = useOrgs();

test('Salesforce erasure: the Contact is found by its external id and deleted through sObject Collections; a second erase finds nothing', async () => {
  const sf = await org();
  const session = await openSession(sf, { auth: 'access_token' });
  const res = await session.deliver([upsert('C-erase-1', { LastName: 'Doe', RFM_Segment__c: 'Champions', RFM_Recency_Days__c: 3, RFM_Monetary__c: 10 }),
    upsert('C-keep-2', { LastName: 'Roe', RFM_Segment__c: 'Lost', RFM_Recency_Days__c: 9, RFM_Monetary__c: 1 })], new AbortController().signal);
  assert.ok(res.outcomes.every((o) => o.status === 'delivered'), JSON.stringify(res.outcomes));
  await session.close();
  const target = (key: string, destinationId: string | null) => ({
    key, mapping: contactMapping(), connectionName: 'salesforce', connection: connectionFor(sf, 'access_token'), destinationId, erasureId: 1,
    settings: Settings.parse({}), signal: new AbortController().signal,
  });
  const r = await ERASERS.salesforce!(target('C-erase-1', null));
  assert.equal(r.status, 'done', r.detail);
  assert.match(r.requestId ?? '', /^003/);
  const left = sf.records('Contact').map((c) => c.Customer_Id__c);
  assert.deepEqual(left, ['C-keep-2']);
  const again = await ERASERS.salesforce!(target('C-erase-1', null));
  assert.deepEqual([again.status, again.detail], ['done', 'Salesforce holds no such record']);
  const byId = await ERASERS.salesforce!(target('C-erase-1', r.requestId));
  assert.deepEqual([byId.status, byId.detail], ['done', 'already deleted']);
});
