import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jwtAssertion } from '../destinations/salesforce/auth.ts';
import type { SalesforceEmulator } from './emulators/salesforce/index.ts';
import { emulator, JWT_PRIVATE_KEY } from './helpers/salesforce.ts';

// The emulator's own fidelity, over raw HTTP: what the real API rejects, it rejects, in the real shapes.
let sf: SalesforceEmulator;
let token: string;
before(async () => { sf = await emulator({ dailyLimit: 10_000 }); token = sf.issueToken(); });
after(async () => { await sf.close(); });

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; limit: string | null }> {
  const res = await fetch(`${sf.url}/services/data/v62.0/${path}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) : null, limit: res.headers.get('sforce-limit-info') };
}

const rec = (id: string, extra: Record<string, unknown> = {}) => ({ attributes: { type: 'Contact' }, Customer_Id__c: id, LastName: `L${id}`, ...extra });

test('Collections upsert: request-order results, created flag, 200 even with failures, Sforce-Limit-Info', async () => {
  const r = await call('PATCH', 'composite/sobjects/Contact/Customer_Id__c', { allOrNone: false, records: [rec('E1'), rec('E2', { LastName: null }), rec('E3')] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.map((x: any) => [x.success, x.created ?? null, x.errors[0]?.statusCode ?? null]), [[true, true, null], [false, null, 'REQUIRED_FIELD_MISSING'], [true, true, null]]);
  assert.match(r.limit!, /^api-usage=\d+\/10000$/);
  const again = await call('PATCH', 'composite/sobjects/Contact/Customer_Id__c', { allOrNone: false, records: [rec('E1', { LastName: 'New' })] });
  assert.equal(again.body[0].created, false);
});

test('Collections upsert rejects what Salesforce rejects', async () => {
  const over = await call('PATCH', 'composite/sobjects/Contact/Customer_Id__c', { records: Array.from({ length: 201 }, (_, i) => rec(`O${i}`)) });
  assert.deepEqual([over.status, over.body[0].errorCode], [400, 'EXCEEDED_ID_LIMIT']);
  const noType = await call('PATCH', 'composite/sobjects/Contact/Customer_Id__c', { records: [{ Customer_Id__c: 'X', LastName: 'x' }] });
  assert.deepEqual([noType.status, noType.body[0].errorCode], [400, 'INVALID_TYPE']);
  const unknown = await call('PATCH', 'composite/sobjects/Contact/Customer_Id__c', { records: [rec('X', { Foo__c: 1 })] });
  assert.deepEqual([unknown.status, unknown.body[0].errorCode], [400, 'INVALID_FIELD']);
  const notExt = await call('PATCH', 'composite/sobjects/Contact/Email', { records: [rec('X')] });
  assert.deepEqual([notExt.status, notExt.body[0].errorCode], [400, 'INVALID_FIELD']);
  const badNumber = await call('PATCH', 'composite/sobjects/Contact/Customer_Id__c', { records: [rec('X', { RFM_Monetary__c: 'lots' })] });
  assert.deepEqual([badNumber.status, badNumber.body[0].errorCode], [400, 'JSON_PARSER_ERROR']);
  const rolledBack = await call('PATCH', 'composite/sobjects/Contact/Customer_Id__c', { allOrNone: true, records: [rec('R1'), rec('R2', { RFM_Segment__c: 'Nope' })] });
  assert.deepEqual(rolledBack.body.map((x: any) => x.errors[0].statusCode), ['ALL_OR_NONE_OPERATION_ROLLED_BACK', 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST']);
  assert.equal(sf.findBy('Contact', 'Customer_Id__c', 'R1'), undefined);
});

test('SOQL: the subset, MALFORMED_QUERY for anything else, pages of 2,000 through nextRecordsUrl', async () => {
  for (let i = 0; i < 2100; i++) sf.org.insert('Case', { Status: 'New', Subject: `s${i}` });
  const q = await call('GET', `query?q=${encodeURIComponent("SELECT Id, Subject FROM Case WHERE Status IN ('New') AND IsClosed = false")}`);
  assert.deepEqual([q.status, q.body.totalSize, q.body.done, q.body.records.length], [200, 2100, false, 2000]);
  assert.equal(q.body.records[0].attributes.type, 'Case');
  const next = await fetch(`${sf.url}${q.body.nextRecordsUrl}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json()) as any;
  assert.deepEqual([next.done, next.records.length], [true, 100]);
  for (const bad of ['SELECT Id FROM Case ORDER BY Id', 'SELECT COUNT() FROM Case', 'DELETE FROM Case', "SELECT Id FROM Case WHERE Subject LIKE 'x%'"]) {
    const r = await call('GET', `query?q=${encodeURIComponent(bad)}`);
    assert.deepEqual([r.status, r.body[0].errorCode], [400, 'MALFORMED_QUERY'], bad);
  }
  const unknown = await call('GET', `query?q=${encodeURIComponent('SELECT Nope__c FROM Case')}`);
  assert.deepEqual([unknown.status, unknown.body[0].errorCode], [400, 'INVALID_FIELD']);
});

test('SOQL dateTime literals unquoted with a zone, comparisons, OR in parentheses; Case keeps CreatedDate, LastModifiedDate, IsClosed', async () => {
  const id = sf.org.insert('Case', { Status: 'New', Subject: 'dated' });
  const c = sf.records('Case').find((r) => r.Id === id)!;
  assert.match(String(c.CreatedDate), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$/);
  assert.equal(c.LastModifiedDate, c.CreatedDate);
  sf.editRecord('Case', id, { CreatedDate: '2020-01-01T00:00:00.000+0000', LastModifiedDate: '2020-01-01T00:00:00.000+0000' });
  const ids = async (where: string): Promise<string[]> => {
    const r = await call('GET', `query?q=${encodeURIComponent(`SELECT Id FROM Case WHERE Subject = 'dated' AND ${where}`)}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.records.map((x: any) => x.Id);
  };
  assert.deepEqual(await ids('CreatedDate < 2020-01-01T00:00:01Z'), [id]);
  assert.deepEqual(await ids('CreatedDate >= 2020-01-01T00:00:00Z'), [id]);
  assert.deepEqual(await ids('CreatedDate > 2020-01-01T00:00:00Z'), []);
  assert.deepEqual(await ids('LastModifiedDate >= 2020-01-01T01:00:00+01:00'), [id], 'an offset is an instant');
  sf.editRecord('Case', id, { Status: 'Closed' });
  const closed = sf.records('Case').find((r) => r.Id === id)!;
  assert.equal(closed.IsClosed, true, 'IsClosed follows Status');
  assert.ok(Date.parse(String(closed.LastModifiedDate).replace('+0000', 'Z')) > Date.now() - 60_000, 'an edit moves LastModifiedDate');
  assert.deepEqual(await ids('(CreatedDate >= 2030-01-01T00:00:00Z OR LastModifiedDate >= 2021-01-01T00:00:00Z) AND IsClosed = true'), [id]);
  assert.deepEqual(await ids('(CreatedDate >= 2030-01-01T00:00:00Z OR IsClosed = false)'), []);
  for (const [bad, code] of [
    ["CreatedDate >= '2020-01-01T00:00:00Z'", 'INVALID_FIELD'],
    ['CreatedDate >= 2020-01-01T00:00:00', 'MALFORMED_QUERY'],
    ['CreatedDate >= 2020-01-01T00:00:00.000Z', 'MALFORMED_QUERY'],
    ['IsClosed = false OR Status = \'New\'', 'MALFORMED_QUERY'],
  ] as const) {
    const r = await call('GET', `query?q=${encodeURIComponent(`SELECT Id FROM Case WHERE Subject = 'dated' AND ${bad}`)}`);
    assert.deepEqual([r.status, r.body[0].errorCode], [400, code], bad);
  }
});

test('a session can be made to expire at a chosen endpoint: that request answers 401 INVALID_SESSION_ID', async () => {
  sf.expireSessionsAt('query');
  assert.equal((await call('GET', 'sobjects/Contact/describe')).status, 200, 'other endpoints first: the session lives');
  const r = await call('GET', `query?q=${encodeURIComponent('SELECT Id FROM Case')}`);
  assert.deepEqual([r.status, r.body], [401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]]);
  assert.equal((await call('GET', 'sobjects/Contact/describe')).status, 401, 'the token stays dead');
  token = sf.issueToken();
});

test('Bulk 2.0 lifecycle: nothing is processed before UploadComplete; results as CSV', async () => {
  const job = await call('POST', 'jobs/ingest', { object: 'Contact', operation: 'upsert', externalIdFieldName: 'Customer_Id__c', contentType: 'CSV', lineEnding: 'LF' });
  assert.equal(job.body.state, 'Open');
  const put = await call('PUT', `jobs/ingest/${job.body.id}/batches`, 'Customer_Id__c,LastName,RFM_Segment__c\nB1,One,Champions\nB2,,Nope\n', { 'content-type': 'text/csv' });
  assert.equal(put.status, 201);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await call('GET', `jobs/ingest/${job.body.id}`)).body.state, 'Open');
  assert.equal(sf.findBy('Contact', 'Customer_Id__c', 'B1'), undefined);
  await call('PATCH', `jobs/ingest/${job.body.id}`, { state: 'UploadComplete' });
  let state = '';
  for (let i = 0; i < 50 && state !== 'JobComplete'; i++) {
    await new Promise((r) => setTimeout(r, 10));
    state = (await call('GET', `jobs/ingest/${job.body.id}`)).body.state;
  }
  assert.equal(state, 'JobComplete');
  const ok = await call('GET', `jobs/ingest/${job.body.id}/successfulResults`);
  assert.match(ok.body, /^"?sf__Id"?,"?sf__Created"?,Customer_Id__c,LastName,RFM_Segment__c\n003\w+,true,B1,One,Champions\n$/);
  const failed = await call('GET', `jobs/ingest/${job.body.id}/failedResults`);
  assert.match(failed.body, /B2/);
  assert.match(failed.body, /INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST|REQUIRED_FIELD_MISSING/);
});

test('daily limit: 403 REQUEST_LIMIT_EXCEEDED once spent; expired sessions answer 401', async () => {
  sf.resetDailyUsage(sf.dailyLimit);
  const r = await call('GET', 'sobjects/Contact/describe');
  assert.deepEqual([r.status, r.body[0].errorCode, r.body[0].message], [403, 'REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.']);
  sf.resetDailyUsage();
  sf.expireSessions();
  const expired = await call('GET', 'sobjects/Contact/describe');
  assert.deepEqual([expired.status, expired.body[0].errorCode], [401, 'INVALID_SESSION_ID']);
  token = sf.issueToken();
});

test('OAuth: JWT bearer verified against the certificate, client credentials checked, no refresh token', async () => {
  const post = (form: Record<string, string>) => fetch(`${sf.url}/services/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
  const good = await post({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: jwtAssertion({ clientId: sf.auth.clientId, username: sf.auth.username, audience: sf.url, privateKey: JWT_PRIVATE_KEY }) });
  const body = await good.json() as Record<string, string>;
  assert.equal(good.status, 200);
  assert.deepEqual(Object.keys(body).sort(), ['access_token', 'id', 'instance_url', 'issued_at', 'scope', 'signature', 'token_type']);
  const wrongUser = await post({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: jwtAssertion({ clientId: sf.auth.clientId, username: 'someone@else', audience: sf.url, privateKey: JWT_PRIVATE_KEY }) });
  assert.equal(wrongUser.status, 400);
  const tampered = body.access_token ? jwtAssertion({ clientId: sf.auth.clientId, username: sf.auth.username, audience: sf.url, privateKey: JWT_PRIVATE_KEY }).replace(/\.[^.]+$/, '.AAAA') : '';
  assert.equal((await post({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: tampered })).status, 400);
  assert.equal((await post({ grant_type: 'client_credentials', client_id: sf.auth.clientId, client_secret: 'wrong' })).status, 400);
});
