import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { BudgetExhaustedError, DestinationError } from '../src/errors.ts';
import type { DestinationSession, FollowUpItem, FollowUps, Payload } from '../destinations/types.ts';
import { SEARCH_PAGING } from '../destinations/hubspot/tickets.ts';
import { startHubSpotEmulator, type HubSpotEmulator } from './emulators/hubspot/server.ts';
import { change, connect, contact, prepareContacts, SEGMENT_OPTIONS, testMapping } from './helpers/hubspot.ts';

const signal = () => new AbortController().signal;
const TICKETS = { open_stages: ['1', '2'], pipeline: '0', priority: { Champions: 'HIGH', 'At Risk': 'URGENT' } };

/** Tickets are follow-up work: deliver() writes contacts only; session.followUps writes their open tickets. */
describe('HubSpot tickets as follow-up work (session.followUps)', () => {
  let hs: HubSpotEmulator;
  beforeEach(async () => {
    hs = await startHubSpotEmulator();
    prepareContacts(hs);
    hs.defineProperty('tickets', { name: 'rfm_segment', type: 'enumeration', options: SEGMENT_OPTIONS.map((v) => ({ label: v, value: v })) });
  });
  afterEach(() => hs.close());

  const ticket = (tid: string) => hs.crm.store('tickets')!.records.get(tid)!.properties;
  const contactId = (key: string) => hs.find('contacts', 'user_id', key)!.id;
  const openTicketFor = (key: string, props: Record<string, string> = {}, at?: Date) => {
    const tid = hs.createTicket({ subject: `for ${key}`, hs_pipeline: '0', hs_pipeline_stage: '1', ...props }, at);
    hs.associateContactTicket(contactId(key), tid);
    return tid;
  };
  /** Delivers the contacts and returns the follow-up items the engine would pass: key, HubSpot id, payload. */
  async function delivered(s: DestinationSession, records: Array<[string, Payload]>): Promise<FollowUpItem[]> {
    const r = await s.deliver(records.map(([k, p]) => change(k, p)), signal());
    assert.ok(r.outcomes.every((o) => o.status === 'delivered'), JSON.stringify(r.outcomes));
    return records.map(([key, payload]) => ({ key, destinationId: r.outcomes.find((o) => o.key === key)!.destinationId!, payload }));
  }
  const followUps = (s: DestinationSession): FollowUps => {
    assert.ok(s.followUps, 'a mapping with tickets: has followUps');
    return s.followUps;
  };

  it('deliver() writes no tickets; followUps.apply puts segment and priority on open tickets only, one outcome per key, and a rerun writes nothing', async () => {
    const s = await connect(hs, testMapping({ tickets: TICKETS }));
    assert.equal(followUps(s).kind, 'tickets');
    assert.equal((await connect(hs)).followUps ?? null, null, 'no tickets: block, no follow-up');
    await s.deliver([change('t1', contact(1)), change('t2', contact(2)), change('t3', contact(3)), change('t4', contact(4))], signal());
    const open1 = openTicketFor('t1', { hs_ticket_priority: 'LOW' });
    const closed1 = openTicketFor('t1', { hs_pipeline_stage: '4', hs_ticket_priority: 'LOW' });
    const open1b = openTicketFor('t1', { hs_pipeline_stage: '2' });
    const open2 = openTicketFor('t2', { hs_pipeline_stage: '2' });
    const open3 = openTicketFor('t3', { hs_ticket_priority: 'MEDIUM' });
    const otherPipeline = openTicketFor('t4', { hs_pipeline: '9' });
    hs.crm.associationPageSize = 2; // t1's third ticket comes on a second page
    const before = hs.requests.length;
    const items = await delivered(s, [['t1', contact(1)], ['t2', contact(2, 'At Risk')], ['t3', contact(3, 'Promising')], ['t4', contact(4)], ['gone', contact(5)]]);
    assert.equal(hs.requests.slice(before).filter((r) => r.path.includes('ticket')).length, 0, 'deliver() made no ticket call');
    items.push({ key: 'removed', destinationId: contactId('t4'), payload: null });
    const outcomes = await followUps(s).apply(items, signal());
    assert.deepEqual(outcomes.map((o) => [o.key, o.status]), [['t1', 'done'], ['t2', 'done'], ['t3', 'done'], ['t4', 'done'], ['gone', 'done'], ['removed', 'done']]);
    assert.deepEqual([ticket(open1).rfm_segment, ticket(open1).hs_ticket_priority], ['Champions', 'HIGH']);
    assert.deepEqual([ticket(open1b).rfm_segment, ticket(open1b).hs_ticket_priority], ['Champions', 'HIGH']);
    assert.deepEqual([ticket(open2).rfm_segment, ticket(open2).hs_ticket_priority], ['At Risk', 'URGENT']);
    assert.deepEqual([ticket(open3).rfm_segment, ticket(open3).hs_ticket_priority], ['Promising', 'MEDIUM'], 'a segment without a priority leaves it alone');
    assert.equal(ticket(closed1).rfm_segment, undefined);
    assert.equal(ticket(otherPipeline).rfm_segment, undefined);
    assert.equal(hs.count('POST', '/crm/v4/associations/contacts/tickets/batch/read'), 2, 'one read, one second page');
    assert.equal(hs.count('POST', '/crm/v3/objects/tickets/batch/update'), 1);
    assert.equal(hs.requests.find((x) => x.path === '/crm/v3/objects/tickets/batch/update')!.inputs, 4);
    const again = await followUps(s).apply(items, signal());
    assert.ok(again.every((o) => o.status === 'done'));
    assert.equal(hs.count('POST', '/crm/v3/objects/tickets/batch/update'), 1, 'the tickets already hold the values: nothing written');
  });

  it('a ticket update HubSpot rejects fails its owner only; a failed update request fails the owners of that request; the contacts stay delivered', async () => {
    // The priority for At Risk is not an option of hs_ticket_priority: HubSpot answers 207 for that ticket.
    const s = await connect(hs, testMapping({ tickets: { ...TICKETS, priority: { Champions: 'HIGH', 'At Risk': 'CRITICAL' } } }));
    const records: Array<[string, Payload]> = Array.from({ length: 120 }, (_, i) => [`c${i}`, contact(i, i === 7 ? 'At Risk' : 'Champions')]);
    const items: FollowUpItem[] = [];
    for (let i = 0; i < records.length; i += 100) items.push(...await delivered(s, records.slice(i, i + 100)));
    const tickets = new Map(records.map(([k]) => [k, openTicketFor(k)]));
    const outcomes = new Map((await followUps(s).apply(items, signal())).map((o) => [o.key, o]));
    assert.equal(outcomes.size, 120);
    assert.equal(outcomes.get('c7')!.status, 'failed');
    assert.equal(outcomes.get('c7')!.errorCode, 'HUBSPOT_TICKET_UPDATE_FAILED');
    assert.equal(outcomes.get('c7')!.retryable, false);
    assert.match(outcomes.get('c7')!.errorMessage!, new RegExp(`ticket ${tickets.get('c7')}: .*CRITICAL`));
    assert.equal([...outcomes.values()].filter((o) => o.status === 'done').length, 119);
    assert.equal(ticket(tickets.get('c8')!).rfm_segment, 'Champions');
    assert.equal(hs.records('contacts').length, 120);

    // The second update request (tickets 101..120) gets a 503: its owners fail retryably, the first 100 are done.
    const s2 = await connect(hs, testMapping({ tickets: { ...TICKETS, priority: {} } }));
    const moved = items.map((i) => ({ ...i, payload: { ...i.payload, rfm_segment: 'Hibernating' } }));
    // associations: 2 requests, ticket reads: 2, then updates: the first lets through, the second answers 503
    hs.scriptFaults('none', 'none', 'none', 'none', 'none', 'unavailable');
    const second = await followUps(s2).apply(moved, signal());
    const failed = second.filter((o) => o.status === 'failed');
    assert.equal(failed.length, 20);
    assert.ok(failed.every((o) => o.retryable === true && o.errorCode === 'HUBSPOT_SERVER_ERROR'), JSON.stringify(failed[0]));
    assert.equal(second.filter((o) => o.status === 'done').length, 100);
    const updates = hs.requests.filter((r) => r.path === '/crm/v3/objects/tickets/batch/update').slice(-2);
    assert.deepEqual(updates.map((r) => [r.status, r.inputs]), [[200, 100], [503, 20]]);
  });

  it('a DAILY 429 in the middle of apply defers the keys not written yet, never fails them; at the first request it throws like deliver()', async () => {
    const s = await connect(hs, testMapping({ tickets: TICKETS }), new Map());
    const records: Array<[string, Payload]> = Array.from({ length: 150 }, (_, i) => [`d${i}`, contact(i)]);
    const items: FollowUpItem[] = [];
    for (let i = 0; i < records.length; i += 100) items.push(...await delivered(s, records.slice(i, i + 100)));
    for (const [k] of records) openTicketFor(k);
    // associations (2), ticket reads (2), first update passes, the second meets the daily limit
    hs.scriptFaults('none', 'none', 'none', 'none', 'none', 'daily_limited');
    const outcomes = await followUps(s).apply(items, signal());
    assert.equal(outcomes.filter((o) => o.status === 'done').length, 100);
    const deferred = outcomes.filter((o) => o.status === 'deferred');
    assert.equal(deferred.length, 50);
    assert.equal(outcomes.filter((o) => o.status === 'failed').length, 0);
    // The budget is spent for the day: the next call throws before sending anything.
    const calls = hs.requests.length;
    await assert.rejects(followUps(s).apply(items.filter((i) => deferred.some((d) => d.key === i.key)), signal()), BudgetExhaustedError);
    assert.equal(hs.requests.length, calls);
  });

  it('changedSince: contacts with open tickets created or changed at or after `since`, not older, closed or other-pipeline ones', async () => {
    const s = await connect(hs, testMapping({ tickets: TICKETS }));
    await s.deliver(['a', 'b', 'c', 'd', 'e'].map((k, i) => change(k, contact(i))), signal());
    const since = new Date(Date.now() - 60_000);
    const longAgo = new Date(since.getTime() - 86_400_000);
    openTicketFor('a', {}, longAgo);
    openTicketFor('b', {});
    const edited = openTicketFor('c', {}, longAgo);
    openTicketFor('d', { hs_pipeline_stage: '4' });
    openTicketFor('e', { hs_pipeline: '9' });
    hs.edit('tickets', edited, 'subject', 'a customer wrote again');
    const ids = await followUps(s).changedSince(since, signal());
    assert.deepEqual(ids.sort(), [contactId('b'), contactId('c')].sort());
    const search = hs.requests.filter((r) => r.path === '/crm/v3/objects/tickets/search');
    assert.equal(search.length, 1);
    assert.equal(hs.count('POST', '/crm/v4/associations/tickets/contacts/batch/read'), 1);
    assert.deepEqual(await followUps(s).changedSince(new Date(Date.now() + 1000), signal()), []);
  });

  it('changedSince pages the search 200 at a time and, past the 10,000-result cap, starts a new query where the last one ended', async () => {
    const s = await connect(hs, testMapping({ tickets: TICKETS }));
    const n = 450;
    const records = Array.from({ length: n }, (_, i): [string, Payload] => [`p${i}`, contact(i)]);
    const items: FollowUpItem[] = [];
    for (let i = 0; i < n; i += 100) items.push(...await delivered(s, records.slice(i, i + 100)));
    const since = new Date(Date.now() - 3_600_000);
    // Distinct modification times, some sharing one millisecond, all after `since`.
    items.forEach((it, i) => openTicketFor(it.key, {}, new Date(since.getTime() + 1000 + Math.floor(i / 3))));
    const ids = await followUps(s).changedSince(since, signal());
    assert.equal(ids.length, n);
    assert.deepEqual(hs.requests.filter((r) => r.path.endsWith('/tickets/search')).map((r) => r.status), [200, 200, 200]);
    hs.requests.splice(0);
    // Reach the cap with few tickets: the real one is 10,000, on both sides.
    hs.crm.searchCap = 200;
    SEARCH_PAGING.cap = 200;
    const capped = await followUps(s).changedSince(since, signal()).finally(() => { SEARCH_PAGING.cap = 10_000; });
    assert.deepEqual(new Set(capped), new Set(ids));
    const searches = hs.requests.filter((r) => r.path.endsWith('/tickets/search'));
    assert.ok(searches.length >= 3 && searches.every((r) => r.status === 200), searches.map((r) => r.status).join(','));
  });

  it('search keeps to 5 calls a second for the account; a SECONDLY 429 is a retryable error with the wait, nothing retried inside', async () => {
    hs.setLimits({ search: 5 });
    const s = await connect(hs, testMapping({ tickets: TICKETS }));
    await s.deliver([change('x', contact(1))], signal());
    openTicketFor('x');
    const started = Date.now();
    for (let i = 0; i < 7; i++) await followUps(s).changedSince(new Date(0), signal());
    assert.equal(hs.count('POST', '/crm/v3/objects/tickets/search', 429), 0);
    assert.ok(Date.now() - started >= 1_000, 'seven searches cannot pass within one second');
    hs.scriptFaults('rate_limited');
    const calls = hs.count('POST', '/crm/v3/objects/tickets/search');
    const err = await followUps(s).changedSince(new Date(0), signal()).catch((e: unknown) => e);
    assert.ok(err instanceof DestinationError && err.code === 'HUBSPOT_RATE_LIMIT_SECONDLY' && err.retryable && err.retryAfterMs === 1000, String(err));
    assert.equal(hs.count('POST', '/crm/v3/objects/tickets/search') - calls, 1, 'one call, no retry in the connector');
  });
});
