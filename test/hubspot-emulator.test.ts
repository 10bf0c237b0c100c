import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@hubspot/api-client';
import { startHubSpotEmulator, type HubSpotEmulator } from './emulators/hubspot/server.ts';

for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy']) delete process.env[k];

/** The emulator's own rules, checked through the real SDK: if these drift, every HubSpot test lies. */
describe('HubSpot emulator (through @hubspot/api-client)', () => {
  let hs: HubSpotEmulator;
  let client: Client;
  before(async () => {
    hs = await startHubSpotEmulator();
    hs.defineProperty('contacts', { name: 'user_id', type: 'string', hasUniqueValue: true });
    hs.defineProperty('contacts', { name: 'rfm_segment', type: 'enumeration', options: [{ label: 'Champions', value: 'Champions' }, { label: 'At Risk', value: 'At Risk' }] });
    hs.defineProperty('contacts', { name: 'recency_score', type: 'number' });
    client = new Client({ accessToken: hs.token, basePath: hs.url });
  });
  after(() => hs.close());

  const input = (id: string, props: Record<string, string>) => ({ id, idProperty: 'user_id', objectWriteTraceId: id, properties: props });

  it('upserts by a unique property, says which records are new, and updates on the second call', async () => {
    const first = await client.crm.objects.batchApi.upsert('contacts', { inputs: [input('u1', { rfm_segment: 'Champions', recency_score: '5.0' })] });
    assert.equal(first.results[0]!._new, true);
    assert.equal(first.results[0]!.objectWriteTraceId, 'u1');
    assert.ok(first.results[0]!.createdAt instanceof Date);
    const second = await client.crm.objects.batchApi.upsert('contacts', { inputs: [input('u1', { rfm_segment: 'At Risk' })] });
    assert.equal(second.results[0]!._new, false);
    assert.equal(second.results[0]!.id, first.results[0]!.id);
    assert.equal(hs.find('contacts', 'user_id', 'u1')!.properties.recency_score, '5');
  });

  it('answers 207 with the objectWriteTraceId of a record whose enumeration value is not an option, and keeps the rest', async () => {
    const r = await client.crm.objects.batchApi.upsert('contacts', { inputs: [input('u2', { rfm_segment: 'Champions' }), input('u3', { rfm_segment: 'Whales' })] }) as { results: unknown[]; errors?: Array<{ context: Record<string, string[]>; errors: Array<{ code: string }> }> };
    assert.equal(r.results.length, 1);
    assert.deepEqual(r.errors![0]!.context.objectWriteTraceId, ['u3']);
    assert.equal(r.errors![0]!.errors[0]!.code, 'INVALID_OPTION');
    assert.equal(hs.find('contacts', 'user_id', 'u3'), undefined);
  });

  it('rejects a whole batch with 400 for an unknown property, more than 100 inputs, duplicate ids, or a non-unique idProperty', async () => {
    const code = async (inputs: unknown[]) => {
      try {
        await client.crm.objects.batchApi.upsert('contacts', { inputs: inputs as never });
        return 200;
      } catch (e) {
        return (e as { code: number }).code;
      }
    };
    assert.equal(await code([input('u4', { no_such: 'x' })]), 400);
    assert.equal(await code(Array.from({ length: 101 }, (_, i) => input(`b${i}`, {}))), 400);
    assert.equal(await code([input('u5', {}), input('u5', {})]), 400);
    assert.equal(await code([{ id: 'x', idProperty: 'firstname', properties: {} }]), 400);
    assert.equal(hs.records('contacts').length, 2);
  });

  it('batch read by idProperty answers 207 for missing ids; normalised numbers come back as strings', async () => {
    const r = await client.crm.objects.batchApi.read('contacts', { idProperty: 'user_id', inputs: [{ id: 'u1' }, { id: 'nope' }], properties: ['recency_score'], propertiesWithHistory: [] }) as { results: Array<{ properties: Record<string, string> }>; errors?: Array<{ context: Record<string, string[]> }> };
    assert.equal(r.results.length, 1);
    assert.equal(r.results[0]!.properties.recency_score, '5');
    assert.deepEqual(r.errors![0]!.context.ids, ['nope']);
  });

  it('answers 401 to a wrong token and 409 to an existing property', async () => {
    const bad = new Client({ accessToken: 'wrong', basePath: hs.url });
    await assert.rejects(bad.crm.properties.coreApi.getAll('contacts'), (e: { code: number }) => e.code === 401);
    await assert.rejects(client.crm.properties.coreApi.create('contacts', { name: 'user_id', label: 'x', type: 'string' as never, fieldType: 'text' as never, groupName: 'g' }), (e: { code: number }) => e.code === 409);
  });

  it('injects the same faults for the same seed (5xx, timeouts, resets before and after applying, slow answers), and scripted ones in order', async () => {
    const { FaultInjector, NO_FAULTS } = await import('./emulators/hubspot/limits.ts');
    const settings = { ...NO_FAULTS, seed: 9, serverError: 0.2, timeout: 0.1, reset: 0.2, slow: 0.2, slowMs: 5 };
    const a = new FaultInjector(settings);
    const b = new FaultInjector(settings);
    const draws = Array.from({ length: 200 }, () => a.draw());
    assert.deepEqual(Array.from({ length: 200 }, () => b.draw()), draws);
    for (const f of ['server_error', 'timeout', 'reset_before', 'reset_after', 'slow', 'none']) assert.ok(draws.includes(f as never), f);
    hs.setFaults({ seed: 3, serverError: 1 });
    await assert.rejects(client.crm.properties.coreApi.getAll('contacts'), (e: { code: number }) => e.code === 502);
    hs.setFaults({ serverError: 0 });
    await fetch(`${hs.url}/__emulator/faults`, { method: 'POST', body: JSON.stringify({ script: ['unavailable', 'none', 'rate_limited'] }) });
    await assert.rejects(client.crm.properties.coreApi.getAll('contacts'), (e: { code: number }) => e.code === 503);
    await client.crm.properties.coreApi.getAll('contacts');
    await assert.rejects(client.crm.properties.coreApi.getAll('contacts'), (e: { code: number; body: { policyName: string } }) => e.code === 429 && e.body.policyName === 'TEN_SECONDLY_ROLLING');
    hs.setFaults({ reset: 1 });
    await assert.rejects(client.crm.properties.coreApi.getAll('contacts'), (e: { code?: number }) => e.code === undefined);
    hs.setFaults({ reset: 0 });
  });

  it('sends rate-limit headers and 429 bodies per policy, which reach the SDK\'s ApiException', async () => {
    hs.setLimits({ tenSecondly: 2, daily: 1000, timeScale: 10 });
    hs.nextDay();
    const info = await client.crm.properties.coreApi.getAllWithHttpInfo('contacts');
    assert.equal(info.headers['x-hubspot-ratelimit-max'], '2');
    assert.equal(info.headers['x-hubspot-ratelimit-interval-milliseconds'], '1000');
    assert.equal(info.headers['x-hubspot-ratelimit-daily-remaining'], '999');
    await client.crm.properties.coreApi.getAll('contacts');
    const e = await client.crm.objects.batchApi.upsert('contacts', { inputs: [] }).catch((x: unknown) => x) as { code: number; body: Record<string, unknown>; headers: Record<string, string> };
    assert.equal(e.code, 429);
    assert.equal(e.body.policyName, 'TEN_SECONDLY_ROLLING');
    assert.equal(e.headers['x-hubspot-ratelimit-remaining'], '0');
    hs.setLimits({ tenSecondly: null, daily: 0 });
    const daily = await client.crm.objects.batchApi.upsert('contacts', { inputs: [] }).catch((x: unknown) => x) as { code: number; body: Record<string, unknown> };
    assert.equal(daily.body.policyName, 'DAILY');
    hs.setLimits({ tenSecondly: null, daily: null });
  });
  it('searches tickets: filters ANDed in a group, groups ORed, datetimes by epoch ms, one sort, pages of at most 200, no further than 10,000 results', async () => {
    hs.setLimits({ search: null }); // this test is about answers, the next one about the search limit
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    const ids = Array.from({ length: 250 }, (_, i) => hs.createTicket({ subject: `s${i}`, hs_pipeline: '0', hs_pipeline_stage: i % 5 === 0 ? '4' : '1' }, new Date(t0 + (250 - i) * 1000)));
    const body = (after?: string, limit = 200) => ({
      filterGroups: [{ filters: [{ propertyName: 'hs_lastmodifieddate', operator: 'GTE' as never, value: String(t0 + 51_000) }, { propertyName: 'hs_pipeline_stage', operator: 'IN' as never, values: ['1', '2'] }] }],
      sorts: [{ propertyName: 'hs_lastmodifieddate', direction: 'ASCENDING' }] as never, properties: ['hs_pipeline_stage'], limit, ...(after ? { after } : {}),
    });
    const first = await client.crm.tickets.searchApi.doSearch(body());
    // tickets 0..199 are modified at t0+250s..t0+51s; one in five is closed: 160 open ones match
    assert.equal(first.total, 160);
    assert.equal(first.results.length, 160);
    assert.equal(first.paging, undefined);
    const times = first.results.map((r) => Date.parse(r.properties.hs_lastmodifieddate!));
    assert.deepEqual(times, [...times].sort((a, b) => a - b));
    assert.ok(first.results.every((r) => r.properties.hs_pipeline_stage === '1'));
    const paged = await client.crm.tickets.searchApi.doSearch(body(undefined, 100));
    assert.equal(paged.paging!.next!.after, '100');
    const second = await client.crm.tickets.searchApi.doSearch(body('100', 100));
    assert.equal(second.results.length, 60);
    assert.equal(new Set([...paged.results, ...second.results].map((r) => r.id)).size, 160);
    const code = (p: Promise<unknown>) => p.then(() => 200, (e: { code: number }) => e.code);
    assert.equal(await code(client.crm.tickets.searchApi.doSearch(body(undefined, 201))), 400);
    assert.equal(await code(client.crm.tickets.searchApi.doSearch(body('10000'))), 400);
    assert.equal(await code(client.crm.tickets.searchApi.doSearch({ filterGroups: [{ filters: [{ propertyName: 'no_such', operator: 'EQ' as never, value: 'x' }] }] })), 400);
    hs.crm.searchCap = 100;
    const capped = await client.crm.tickets.searchApi.doSearch(body(undefined, 100));
    assert.equal(capped.paging!.next!.after, '100', 'HubSpot still offers the next page');
    assert.equal(await code(client.crm.tickets.searchApi.doSearch(body('100', 100))), 400, '... and refuses it');
    hs.crm.searchCap = 10_000;
    for (const id of ids) hs.crm.store('tickets')!.purge(id);
    hs.setLimits({ search: 5 });
  });

  it('limits search to 5 requests a second, answering 429 SECONDLY without rate-limit headers, and counts searches towards the daily limit', async () => {
    hs.setLimits({ tenSecondly: null, daily: 1000, search: 5, timeScale: 1 });
    hs.nextDay();
    const outcomes = await Promise.all(Array.from({ length: 7 }, () => client.crm.tickets.searchApi.doSearchWithHttpInfo({ limit: 1 }).then((i) => i, (e: unknown) => e)));
    const limited = outcomes.filter((o) => (o as { code?: number }).code === 429) as Array<{ body: Record<string, unknown>; headers: Record<string, string> }>;
    assert.equal(limited.length, 2);
    assert.equal(limited[0]!.body.policyName, 'SECONDLY');
    const ok = outcomes.find((o) => (o as { httpStatusCode?: number }).httpStatusCode === 200) as { headers: Record<string, string> };
    assert.equal(ok.headers['x-hubspot-ratelimit-remaining'], undefined);
    assert.equal(hs.limiter.dailyUsed, 5);
    hs.setLimits({ daily: null });
  });

  it('reads v4 associations both ways: contact -> tickets (type 15) and ticket -> contacts (type 16), with paging', async () => {
    const c1 = hs.find('contacts', 'user_id', 'u1')!.id;
    const c2 = hs.find('contacts', 'user_id', 'u2')!.id;
    const t1 = hs.createTicket({ subject: 'a' });
    const t2 = hs.createTicket({ subject: 'b' });
    hs.associateContactTicket(c1, t1);
    hs.associateContactTicket(c2, t1);
    hs.associateContactTicket(c1, t2);
    const back = await client.crm.associations.v4.batchApi.getPage('tickets', 'contacts', { inputs: [{ id: t1 }, { id: t2 }] });
    const by = new Map(back.results.map((r) => [r._from.id, r.to.map((x) => String(x.toObjectId)).sort()]));
    assert.deepEqual(by.get(t1), [c1, c2].sort());
    assert.deepEqual(by.get(t2), [c1]);
    assert.equal(back.results[0]!.to[0]!.associationTypes[0]!.typeId, 16);
    hs.crm.associationPageSize = 1;
    const paged = await client.crm.associations.v4.batchApi.getPage('contacts', 'tickets', { inputs: [{ id: c1 }] });
    assert.equal(paged.results[0]!.to.length, 1);
    assert.equal(paged.results[0]!.paging!.next!.after, '1');
    assert.equal(paged.results[0]!.to[0]!.associationTypes[0]!.typeId, 15);
    hs.crm.associationPageSize = 500;
    const none = await client.crm.associations.v4.batchApi.getPage('tickets', 'contacts', { inputs: [{ id: hs.createTicket({ subject: 'lonely' }) }] }) as { results: unknown[]; errors?: Array<{ subCategory?: string }> };
    assert.equal(none.results.length, 0);
    assert.equal(none.errors![0]!.subCategory, 'crm.associations.NO_ASSOCIATIONS_FOUND');
  });
});
