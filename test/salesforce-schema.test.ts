import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contactMapping, openSession, useOrgs } from './helpers/salesforce.ts';

const org = useOrgs();

test('validateMapping passes a good mapping and names every bad field', async () => {
  const sf = await org();
  assert.deepEqual(await (await openSession(sf)).validateMapping(), []);
  const bad = contactMapping({
    destination: { connection: 'salesforce', object: 'Contact', match_key: 'Email', options: {} },
    on_removed: 'clear',
    fields: [
      { to: 'LastName', from: 'last_name' },
      { to: 'Nickname__c', from: 'nick' },
      { to: 'Name', from: 'full_name' },
      { to: 'RFM_Recency_Days__c', from: 'segment', transform: 'lowercase' },
      { to: 'RFM_Segment__c', from: 'segment', transform: { map: { a: 'Champions', b: 'Super Fans' } } },
      { to: 'RFM_Segment_Since__c', from: 'since', transform: 'datetime' },
    ],
    cases: { segment_from: 'RFM_Segment__c', segment_field: 'Segment_Text__c', priority: { Champions: 'Urgent' }, open_statuses: ['Open'] },
  });
  const problems = await (await openSession(sf, { mapping: bad })).validateMapping();
  const expected = [
    /Contact\.Email \(destination\.match_key\) is not an External ID field/,
    /Contact\.Nickname__c \(from nick\) does not exist/,
    /Contact\.Name \(from full_name\) is read-only/,
    /Contact\.RFM_Recency_Days__c \(from segment\) is a number field \(double\) but the transform produces text/,
    /Contact\.RFM_Segment__c \(from segment\) is a restricted picklist without the value\(s\) "Super Fans"/,
    /Contact\.RFM_Segment_Since__c \(from since\) is a date field but the transform produces datetime/,
    /Contact\.LastName \(from last_name\) cannot be emptied \(required\), but on_removed is clear/,
    /Case\.Segment_Text__c \(cases\.segment_field\) does not exist/,
    /Case\.Priority has no picklist value\(s\) "Urgent"/,
    /cases\.open_statuses: Case\.Status has no value\(s\) "Open"/,
  ];
  for (const re of expected) assert.ok(problems.some((p) => re.test(p)), `${re} in:\n${problems.join('\n')}`);
  assert.equal(problems.length, expected.length, problems.join('\n'));
});

test('a cases block that does not parse is refused by its schema, before anything connects', () => {
  assert.throws(() => contactMapping({ cases: { segment_field: 'X' } }), /cases\.segment_from: /);
});

test('setup prints the field definitions an admin must create and the Case formula field', async () => {
  const sf = await org();
  const mapping = contactMapping({
    fields: [
      { to: 'LastName', from: 'last_name' },
      { to: 'RFM_Segment__c', from: 'rfm_segment' },
      { to: 'RFM_Tier__c', from: 'tier', transform: { map: { '1': 'Gold', '2': 'Silver' } } },
      { to: 'RFM_Last_Order__c', from: 'last_order', transform: 'date' },
    ],
    cases: { segment_from: 'RFM_Segment__c', segment_field: 'Contact_Segment__c', priority: { Champions: 'High', Lost: 'Critical' } },
  });
  const s = await openSession(sf, { mapping });
  const { lines } = await s.setup!(true);
  const text = lines.join('\n');
  assert.match(lines[0]!, /cannot create Salesforce fields through the REST API: nothing was changed/);
  assert.match(text, /exists: Contact\.Customer_Id__c \(string, length 64, External ID\)/);
  assert.match(text, /exists: Contact\.RFM_Segment__c \(picklist, length 255, values: Champions; Loyal Customers/);
  assert.match(text, /create: Contact\.RFM_Tier__c: Picklist, restricted, values: Gold; Silver/);
  assert.match(text, /create: Contact\.RFM_Last_Order__c: Date/);
  assert.match(text, /create: Case\.Contact_RFM_Segment__c: Formula \(Text\), formula TEXT\(Contact\.RFM_Segment__c\)/);
  assert.match(text, /create: Case\.Contact_Segment__c: Text\(80\)/);
  assert.match(text, /add picklist values to Case\.Priority: Critical/);
  assert.match(text, /Setup > Object Manager/);
  assert.equal(sf.records('Contact').length, 0);
});

test('the example mapping parses, and setup lists what a fresh org lacks', async () => {
  const { readFile } = await import('node:fs/promises');
  const { parse } = await import('yaml');
  const { mappingWithBlocks } = await import('./helpers/blocks.ts');
  const { salesforce } = await import('../destinations/salesforce/index.ts');
  const mapping = mappingWithBlocks(salesforce, parse(await readFile(new URL('../mappings/rfm-to-salesforce.yaml', import.meta.url), 'utf8')));
  const sf = await org();
  const s = await openSession(sf, { mapping });
  const problems = await s.validateMapping();
  assert.deepEqual(problems.map((p) => /^Contact\.(\w+)/.exec(p)?.[1]).sort(), ['RFM_Frequency_Score__c', 'RFM_Last_Payment__c', 'RFM_Monetary_Score__c', 'RFM_Recency_Score__c']);
  const { lines } = await s.setup!(false);
  assert.ok(lines.includes('create: Contact.RFM_Recency_Score__c: Number(18, 2); label "RFM Recency Score"'), lines.join('\n'));
  assert.ok(lines.includes('create: Contact.RFM_Last_Payment__c: Date; label "RFM Last Payment"'), lines.join('\n'));
});

test('credentials come only from the connection block (${ENV} interpolation), never from the environment behind it', async () => {
  const { SalesforceConnection } = await import('../destinations/salesforce/config.ts');
  process.env.SALESFORCE_CLIENT_ID = 'from-env';
  process.env.SALESFORCE_CLIENT_SECRET = 'from-env';
  try {
    const bare = SalesforceConnection.safeParse({ type: 'salesforce', login_url: 'https://login.example.com' });
    assert.equal(bare.success, false);
    assert.match(bare.error!.issues[0]!.message, /no Salesforce credentials in the connection block/);
    const given = SalesforceConnection.parse({ type: 'salesforce', client_id: 'id', client_secret: 'secret' });
    assert.deepEqual([given.auth, given.clientId, given.loginUrl], ['client_credentials', 'id', 'https://login.salesforce.com']);
  } finally {
    delete process.env.SALESFORCE_CLIENT_ID;
    delete process.env.SALESFORCE_CLIENT_SECRET;
  }
});
