import type { FollowUpItem, FollowUpOutcome, FollowUps } from '../types.ts';
import type { TicketsBlock } from './config.ts';
import { segmentField, type SessionContext } from './context.ts';
import { BudgetExhaustedError, DestinationError } from '../../src/errors.ts';
import { chunk } from '../../src/db/chunk.ts';

/**
 * The tickets follow-up: the segment (and a priority derived from it) onto the open tickets of delivered
 * contacts, with an outcome of its own per contact. A contact is delivered whatever happens to its tickets;
 * the engine keeps the follow-up pending and calls apply() again, without resending the contact.
 *
 * apply(): v4 associations batch reads (contact -> ticket, paged), tickets batch reads, batch updates of the
 * open ones whose values differ. changedSince(): the CRM search on tickets changed since a moment, then
 * ticket -> contact associations. Every call goes through the account's shared budget, like the contacts.
 */

const MAX = 100;
/**
 * The search API's paging limits: at most 200 results a page, and 10,000 results into one query (paging
 * further is a 400). Tests lower `cap` together with the emulator's to reach it with few tickets.
 */
export const SEARCH_PAGING = { page: 200, cap: 10_000 };

/** Error categories of one ticket update that may pass when sent again. */
const TRANSIENT = /RATE_LIMIT|INTERNAL_ERROR|UNAVAILABLE|TIMEOUT|LOCK/;

interface Owner { key: string; contactId: string; segment: string }

interface AssocData { results: Array<{ _from: { id: string }; to: Array<{ toObjectId: string | number }>; paging?: { next?: { after?: string } } }> }
interface TicketData {
  results: Array<{ id: string; properties: Record<string, string | null> }>;
  errors?: Array<{ category?: string; message?: string; context?: Record<string, string[]> }>;
}
interface SearchData { total: number; results: Array<{ id: string; properties: Record<string, string | null> }>; paging?: { next?: { after?: string } } }

/**
 * Outcomes by key, settled once: the first failure of a key is what it reports. Whole-call rule: when the
 * very first request of the call fails, nothing was done and the error is thrown (as deliver() throws), so
 * the engine handles it like a failed batch; a failure after some request succeeded lands on the keys that
 * request was about, and a spent budget defers every key not yet settled.
 */
class Outcomes {
  private readonly out = new Map<string, FollowUpOutcome>();
  private answered = false;
  stopped = false;

  settled(key: string): boolean {
    return this.out.has(key);
  }

  done(key: string): void {
    if (!this.out.has(key)) this.out.set(key, { key, status: 'done' });
  }

  failed(key: string, code: string, message: string, retryable: boolean): void {
    if (!this.out.has(key)) this.out.set(key, { key, status: 'failed', errorCode: code, errorMessage: message, retryable });
  }

  /** One request of the call: returns its answer, or undefined after settling `keys` by the error. */
  async request<T>(keys: Iterable<string>, send: () => Promise<T>): Promise<T | undefined> {
    try {
      const answer = await send();
      this.answered = true;
      return answer;
    } catch (err) {
      if (!this.answered) throw err;
      if (err instanceof BudgetExhaustedError) {
        this.stopped = true;
        return undefined;
      }
      if (!(err instanceof DestinationError)) throw err; // stopping (abort) or a bug: not a HubSpot answer
      for (const k of keys) this.failed(k, err.code, err.message, err.retryable);
      return undefined;
    }
  }

  /** Keys not settled are deferred when the budget stopped the call (nothing else leaves a key open). */
  outcomes(items: FollowUpItem[]): FollowUpOutcome[] {
    return items.map((i) => this.out.get(i.key) ?? (this.stopped
      ? { key: i.key, status: 'deferred', errorCode: 'HUBSPOT_DAILY_BUDGET', errorMessage: 'HubSpot daily budget spent before this contact\'s tickets were written' }
      : { key: i.key, status: 'failed', errorCode: 'HUBSPOT_TICKETS_INCOMPLETE', errorMessage: 'the tickets of this contact were not all read', retryable: true }));
  }
}

export async function applyTickets(ctx: SessionContext, t: TicketsBlock, items: FollowUpItem[], signal: AbortSignal): Promise<FollowUpOutcome[]> {
  const verdicts = new Outcomes();
  const seg = segmentField(ctx)?.to;
  // The last item of a key wins, as in deliver().
  const latest = new Map(items.map((i) => [i.key, i]));
  const owners = new Map<string, Owner>();
  for (const i of latest.values()) {
    // A removed record clears nothing on tickets (they keep the last segment, as the history of the case),
    // and a payload without a segment has nothing to write: both are done.
    const value = i.payload === null || seg === undefined ? undefined : i.payload[seg];
    if (value === undefined || value === null || value === '') verdicts.done(i.key);
    else if (!i.destinationId) verdicts.failed(i.key, 'HUBSPOT_NO_CONTACT_ID', 'no HubSpot contact id for this record: deliver it first', false);
    else owners.set(i.key, { key: i.key, contactId: i.destinationId, segment: String(value) });
  }
  const byContact = new Map<string, Owner>();
  for (const o of owners.values()) if (!byContact.has(o.contactId)) byContact.set(o.contactId, o);
  const keysOf = (contactIds: Iterable<string>) => [...contactIds].flatMap((id) => [...owners.values()].filter((o) => o.contactId === id).map((o) => o.key));

  // What is left to do per key; a key is done when nothing is left and nothing failed.
  const assocLeft = new Set(byContact.keys());
  const readsLeft = new Map<string, number>();
  const writesLeft = new Map<string, number>();
  const settle = (o: Owner) => {
    if (!assocLeft.has(o.contactId) && !readsLeft.get(o.key) && !writesLeft.get(o.key)) verdicts.done(o.key);
  };
  const add = (m: Map<string, number>, key: string, n: number) => m.set(key, (m.get(key) ?? 0) + n);

  // ticket id -> the contact whose segment it gets (the first one of this call associated with it)
  const ticketOwner = new Map<string, Owner>();
  // A contact with many tickets comes back with paging.next.after: ask again for those, from there.
  let pending: Array<{ id: string; after?: string }> = [...byContact.keys()].map((id) => ({ id }));
  while (pending.length > 0 && !verdicts.stopped) {
    const next: Array<{ id: string; after: string }> = [];
    for (const part of chunk(pending, MAX)) {
      if (verdicts.stopped) break;
      const info = await verdicts.request(keysOf(part.map((p) => p.id)), () => ctx.api.call('contact->ticket associations batch read', (c) => c.crm.associations.v4.batchApi.getPageWithHttpInfo('contacts', 'tickets', { inputs: part }), signal));
      if (!info) continue;
      const more = new Set<string>();
      for (const r of (info.data as unknown as AssocData).results ?? []) {
        const owner = byContact.get(String(r._from.id));
        if (!owner) continue;
        for (const to of r.to) {
          const id = String(to.toObjectId);
          if (ticketOwner.has(id)) continue;
          ticketOwner.set(id, owner);
          add(readsLeft, owner.key, 1);
        }
        const after = r.paging?.next?.after;
        if (after) {
          next.push({ id: owner.contactId, after });
          more.add(owner.contactId);
        }
      }
      // Contacts without tickets come back as 207 errors (NO_ASSOCIATIONS_FOUND): nothing to write for them.
      for (const p of part) if (!more.has(p.id)) assocLeft.delete(p.id);
    }
    pending = next;
  }
  for (const o of byContact.values()) settle(o);
  // Tickets of a key that already failed are not read or written: the key is retried as a whole.
  const live = (o: Owner) => !verdicts.settled(o.key) && !assocLeft.has(o.contactId);
  const props = ['hs_pipeline', 'hs_pipeline_stage', t.segment_property, t.priority_property];
  const updates: Array<{ id: string; properties: Record<string, string>; owner: Owner }> = [];
  for (const part of chunk([...ticketOwner.keys()].filter((id) => live(ticketOwner.get(id)!)), MAX)) {
    if (verdicts.stopped) break;
    const info = await verdicts.request(part.map((id) => ticketOwner.get(id)!.key), () => ctx.api.call('tickets batch read', (c) => c.crm.tickets.batchApi.readWithHttpInfo({ inputs: part.map((id) => ({ id })), properties: props, propertiesWithHistory: [] }), signal));
    if (!info) continue;
    // Tickets deleted since the association read come back as 207 errors: nothing to write on them.
    for (const ticket of (info.data as unknown as TicketData).results ?? []) {
      const p = ticket.properties;
      if (!t.open_stages.includes(p.hs_pipeline_stage ?? '')) continue;
      if (t.pipeline !== undefined && p.hs_pipeline !== t.pipeline) continue;
      const owner = ticketOwner.get(ticket.id);
      if (!owner) continue;
      const want: Record<string, string> = { [t.segment_property]: owner.segment };
      const priority = t.priority[owner.segment];
      if (priority !== undefined) want[t.priority_property] = priority;
      // Only what differs: a rerun costs reads, not writes.
      if (Object.entries(want).some(([k, v]) => p[k] !== v)) {
        updates.push({ id: ticket.id, properties: want, owner });
        add(writesLeft, owner.key, 1);
      }
    }
    const touched = new Set<Owner>();
    for (const id of part) {
      const o = ticketOwner.get(id)!;
      add(readsLeft, o.key, -1);
      touched.add(o);
    }
    for (const o of touched) settle(o);
  }
  let written = 0;
  for (const part of chunk(updates.filter((u) => live(u.owner)), MAX)) {
    if (verdicts.stopped) break;
    const info = await verdicts.request(part.map((u) => u.owner.key), () => ctx.api.call('tickets batch update', (c) => c.crm.tickets.batchApi.updateWithHttpInfo({ inputs: part.map((u) => ({ id: u.id, properties: u.properties })) }), signal));
    if (!info) continue;
    for (const e of (info.data as unknown as TicketData).errors ?? []) {
      if (e.category === 'OBJECT_NOT_FOUND') continue; // deleted meanwhile: nothing left to write on it
      for (const id of e.context?.ids ?? e.context?.id ?? []) {
        const u = part.find((x) => x.id === id);
        if (u) verdicts.failed(u.owner.key, 'HUBSPOT_TICKET_UPDATE_FAILED', `ticket ${id}: ${e.message ?? 'rejected'}`, TRANSIENT.test(e.category ?? ''));
      }
    }
    written += part.length;
    for (const u of part) add(writesLeft, u.owner.key, -1);
    for (const o of new Set(part.map((u) => u.owner))) settle(o);
  }
  const outcomes = verdicts.outcomes(items);
  ctx.log.debug({ contacts: owners.size, tickets: ticketOwner.size, updates: updates.length, written, failed: outcomes.filter((o) => o.status === 'failed').length, deferred: outcomes.filter((o) => o.status === 'deferred').length }, 'hubspot tickets follow-up');
  return outcomes;
}

/**
 * HubSpot ids of contacts with open tickets (of the pipeline, when set) created or changed at or after
 * `since`. A search query pages at most 10,000 results deep: sorted by hs_lastmodifieddate, a long result is
 * read as several queries, each starting at the last modification time seen (ties are read twice and kept
 * once). Any failure throws: a partial answer would look like "no tickets changed".
 */
export async function contactsWithChangedTickets(ctx: SessionContext, t: TicketsBlock, since: Date, signal: AbortSignal): Promise<string[]> {
  const tickets = new Set<string>();
  let from = since.getTime();
  for (;;) {
    let after: string | undefined;
    let last: number | undefined;
    let capped = false;
    for (;;) {
      const filters = [
        { propertyName: 'hs_lastmodifieddate', operator: 'GTE', value: String(from) },
        { propertyName: 'hs_pipeline_stage', operator: 'IN', values: t.open_stages },
        ...(t.pipeline !== undefined ? [{ propertyName: 'hs_pipeline', operator: 'EQ', value: t.pipeline }] : []),
      ];
      const body = {
        filterGroups: [{ filters }], sorts: [{ propertyName: 'hs_lastmodifieddate', direction: 'ASCENDING' }],
        properties: ['hs_lastmodifieddate'], limit: SEARCH_PAGING.page, ...(after !== undefined ? { after } : {}),
      };
      const info = await ctx.api.search('tickets search', (c) => c.crm.tickets.searchApi.doSearchWithHttpInfo(body as never), signal);
      const data = info.data as unknown as SearchData;
      for (const r of data.results ?? []) {
        tickets.add(String(r.id));
        const at = Date.parse(String(r.properties.hs_lastmodifieddate ?? ''));
        if (!Number.isNaN(at)) last = at;
      }
      after = data.paging?.next?.after;
      if (after === undefined) break;
      if (Number(after) >= SEARCH_PAGING.cap) {
        capped = true;
        break;
      }
    }
    if (!capped) break;
    if (last === undefined || last <= from) {
      // More than 10,000 tickets changed within one millisecond: the search cannot page past them.
      ctx.log.warn({ since: new Date(from).toISOString(), found: tickets.size }, 'hubspot tickets search: over 10,000 tickets share one modification time; some are not seen');
      break;
    }
    from = last;
  }
  const contacts = new Set<string>();
  let pending: Array<{ id: string; after?: string }> = [...tickets].map((id) => ({ id }));
  while (pending.length > 0) {
    const next: Array<{ id: string; after: string }> = [];
    for (const part of chunk(pending, MAX)) {
      const info = await ctx.api.call('ticket->contact associations batch read', (c) => c.crm.associations.v4.batchApi.getPageWithHttpInfo('tickets', 'contacts', { inputs: part }), signal);
      for (const r of (info.data as unknown as AssocData).results ?? []) {
        for (const to of r.to) contacts.add(String(to.toObjectId));
        const after = r.paging?.next?.after;
        if (after) next.push({ id: String(r._from.id), after });
      }
    }
    pending = next;
  }
  ctx.log.debug({ since: since.toISOString(), tickets: tickets.size, contacts: contacts.size }, 'hubspot tickets changed since');
  return [...contacts];
}

export function ticketFollowUps(ctx: SessionContext, t: TicketsBlock): FollowUps {
  return {
    kind: 'tickets',
    apply: (items, signal) => applyTickets(ctx, t, items, signal),
    changedSince: (since, signal) => contactsWithChangedTickets(ctx, t, since, signal),
  };
}
