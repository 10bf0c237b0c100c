import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { startHubSpotEmulator, type HubSpotEmulator } from './emulators/hubspot/server.ts';
import { change, connect, contact, prepareContacts, SEGMENT_OPTIONS, testMapping } from './helpers/hubspot.ts';

const signal = () => new AbortController().signal;

describe('HubSpot destination: setup, validate and read-back', () => {
  let hs: HubSpotEmulator;
  beforeEach(async () => {
    hs = await startHubSpotEmulator();
  });
  afterEach(() => hs.close());

  it('setup lists what is missing, then creates it: the segment as an enumeration of all ten segments, scores as numbers, the since date, the run id, a unique match key', async () => {
    const mapping = testMapping({ tickets: { open_stages: ['1', '2'], priority: { Champions: 'HIGH' } } });
    const s = await connect(hs, mapping);
    const dry = await s.setup!(false);
    assert.ok(dry.lines.some((l) => l.startsWith('would create: contacts.rfm_segment (enumeration)')));
    assert.equal(hs.count('POST', '/crm/v3/properties'), 0);
    await assert.rejects(s.check(), (e: Error & { code: string }) => e.code === 'HUBSPOT_SCHEMA' && /contacts\.user_id .*does not exist[^]*contacts\.rfm_segment .*does not exist/.test(e.message));
    const done = await s.setup!(true);
    assert.deepEqual(done.lines.filter((l) => l.startsWith('created:')).map((l) => l.split(' ')[1]),
      ['contacts.user_id', 'contacts.rfm_segment', 'contacts.rfm_recency_score', 'contacts.rfm_monetary', 'contacts.rfm_segment_since', 'contacts.segsync_last_run', 'tickets.rfm_segment']);
    assert.ok(done.lines.includes('exists: tickets.hs_ticket_priority (enumeration)'));
    const props = hs.crm.store('contacts')!.properties;
    assert.deepEqual(props.get('rfm_segment')!.options.map((o) => o.value), SEGMENT_OPTIONS);
    assert.equal(props.get('rfm_recency_score')!.type, 'number');
    assert.equal(props.get('rfm_segment_since')!.type, 'date');
    assert.equal(props.get('user_id')!.hasUniqueValue, true);
    assert.equal(hs.crm.store('tickets')!.properties.get('rfm_segment')!.options.length, 10);
    const again = await (await connect(hs, mapping)).setup!(true);
    assert.ok(again.lines.every((l) => l.startsWith('exists:')), again.lines.join('\n'));
    assert.equal(hs.count('POST', '/crm/v3/properties', 409), 0);
    await (await connect(hs, mapping)).check();
    assert.deepEqual(await (await connect(hs, mapping)).validateMapping(), []);
  });

  it('setup creates segment options the way the mapping transform sends them', async () => {
    const s = await connect(hs, testMapping({ fields: [{ to: 'rfm_segment', from: 'rfm_segment', transform: 'slug' }], destination: { connection: 'hubspot', object: 'contacts', match_key: 'user_id', options: { since_property: false, run_property: false } } }));
    await s.setup!(true);
    assert.deepEqual(hs.crm.store('contacts')!.properties.get('rfm_segment')!.options.map((o) => o.value).slice(0, 3), ['champions', 'loyal_customers', 'potential_loyalists']);
  });

  it('validate flags a missing property, a read-only one, an enumeration value that is not an option, a non-unique match key and a bad ticket priority', async () => {
    prepareContacts(hs);
    hs.defineProperty('contacts', { name: 'tier', type: 'enumeration', options: [{ label: 'Gold', value: 'gold' }] });
    const mapping = testMapping({
      destination: { connection: 'hubspot', object: 'contacts', match_key: 'firstname', options: {} },
      fields: [
        { to: 'rfm_segment', from: 'rfm_segment', transform: { map: { Champions: 'champ' } } },
        { to: 'num_associated_deals', from: 'frequency' },
        { to: 'tier', from: 'tier', transform: { map: { a: 'gold', b: 'platinum' } } },
        { to: 'not_there', from: 'recency_score' },
      ],
      tickets: { open_stages: ['1'], priority: { Champions: 'HIGH', 'At Risk': 'CRITICAL' } },
    });
    const problems = await (await connect(hs, mapping)).validateMapping();
    const text = problems.join('\n');
    assert.match(text, /contacts\.firstname .* must have unique values/);
    assert.match(text, /contacts\.rfm_segment .*without the option\(s\) "champ"/);
    assert.match(text, /contacts\.num_associated_deals .* read-only or calculated/);
    assert.match(text, /contacts\.tier .*without the option\(s\) "platinum"/);
    assert.match(text, /contacts\.not_there .* does not exist in HubSpot; create it with `segsync setup rfm-to-hubspot --apply`/);
    assert.match(text, /tickets\.rfm_segment .* does not exist/);
    assert.match(text, /tickets\.hs_ticket_priority .*without the option\(s\) "CRITICAL"/);
    assert.match(text, /tickets\.priority: "Champions" never occur/);
    // A run refuses to start on what would fail every record, not on an enumeration that lacks one option.
    const err = await (await connect(hs, mapping)).check().catch((e: Error) => e);
    assert.ok(err instanceof Error && /firstname[^]*num_associated_deals[^]*not_there/.test(err.message), String(err));
    assert.doesNotMatch(err.message, /"champ"|"platinum"|never occur/);
  });

  it('connection settings: the token comes only from the block (`${HUBSPOT_ACCESS_TOKEN}` interpolated), never from the environment; a missing token or a misspelt key is a clear error', async () => {
    const { HubSpotConnection } = await import('../destinations/hubspot/config.ts');
    const saved = process.env.HUBSPOT_ACCESS_TOKEN;
    try {
      const c = HubSpotConnection.parse({ type: 'hubspot', access_token: 'pat-from-block', tier: 'professional', ten_secondly_limit: '150' });
      assert.deepEqual([c.accessToken, c.baseUrl, c.tenSecondly, c.daily], ['pat-from-block', 'https://api.hubapi.com', 150, 625_000]);
      process.env.HUBSPOT_ACCESS_TOKEN = 'pat-from-env';
      const missing = HubSpotConnection.safeParse({ type: 'hubspot' });
      assert.equal(missing.success, false, 'the environment is not read behind the config\'s back');
      assert.match(missing.error!.issues[0]!.message, /access_token: \$\{HUBSPOT_ACCESS_TOKEN\}/);
      assert.match(HubSpotConnection.safeParse({ type: 'hubspot', access_token: '' }).error!.issues[0]!.message, /empty/);
      assert.match(JSON.stringify(HubSpotConnection.safeParse({ type: 'hubspot', access_token: 'x', acess_token: 'x' }).error!.issues), /acess_token/);
    } finally {
      if (saved === undefined) delete process.env.HUBSPOT_ACCESS_TOKEN;
      else process.env.HUBSPOT_ACCESS_TOKEN = saved;
    }
  });

  it('read-back: verified despite HubSpot normalisation, drifted when edited in the CRM (with the field), missing when deleted', async () => {
    prepareContacts(hs);
    const s = await connect(hs);
    const payloads = Array.from({ length: 120 }, (_, i) => contact(i));
    await s.deliver(payloads.slice(0, 100).map((p, i) => change(`k${i}`, p)), signal());
    await s.deliver(payloads.slice(100).map((p, i) => change(`k${i + 100}`, p)), signal());
    hs.edit('contacts', hs.find('contacts', 'user_id', 'k5')!.id, 'rfm_segment', 'Hibernating');
    hs.purge('contacts', hs.find('contacts', 'user_id', 'k6')!.id);
    const requests = payloads.map((p, i) => ({ key: `k${i}`, expected: { ...p, rfm_monetary: i === 3 ? '31.50' : p.rfm_monetary! }, destinationId: null }));
    const results = [...await s.readBack(requests.slice(0, 100), signal()), ...await s.readBack(requests.slice(100), signal())];
    const by = new Map(results.map((r) => [r.key, r]));
    assert.equal(by.get('k3')!.status, 'verified');
    assert.equal(by.get('k3')!.actual!.rfm_monetary, '31.5');
    assert.equal(by.get('k5')!.status, 'drifted');
    assert.deepEqual(by.get('k5')!.driftedFields, ['rfm_segment']);
    assert.equal(by.get('k5')!.actual!.rfm_segment, 'Hibernating');
    assert.equal(by.get('k6')!.status, 'missing');
    assert.equal(results.filter((r) => r.status === 'verified').length, 118);
    assert.equal(hs.count('POST', '/crm/v3/objects/contacts/batch/read'), 2);
  });

  it('a custom object works the same way, by its object type id', async () => {
    hs.defineCustomObject('2-4242', [{ name: 'member_no', type: 'string', hasUniqueValue: true }, { name: 'rfm_segment', type: 'enumeration', options: SEGMENT_OPTIONS.map((v) => ({ label: v, value: v })) }]);
    const mapping = testMapping({
      destination: { connection: 'hubspot', object: '2-4242', match_key: 'member_no', options: { since_property: false, run_property: false } },
      fields: [{ to: 'rfm_segment', from: 'rfm_segment' }],
    });
    const s = await connect(hs, mapping);
    await s.check();
    const r = await s.deliver([change('m-1', { rfm_segment: 'Champions' })], signal());
    assert.equal(r.outcomes[0]!.created, true);
    assert.equal(hs.find('2-4242', 'member_no', 'm-1')!.properties.rfm_segment, 'Champions');
  });
});
