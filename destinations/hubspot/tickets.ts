import type { TicketsBlock } from './config.ts';
import type { SessionContext } from './context.ts';
import { chunk } from '../../src/db/chunk.ts';

/**
 * The segment (and a priority derived from it) onto the open tickets of contacts just delivered: one v4
 * associations batch read (contact -> ticket), batch reads of those tickets, and batch updates of the open
 * ones whose values differ. All inside the account's shared budget, like every other call.
 */

const MAX = 100;

interface Delivered { key: string; contactId: string; segment: string }

interface AssocData { results: Array<{ _from: { id: string }; to: Array<{ toObjectId: string | number }>; paging?: { next?: { after?: string } } }> }
interface TicketData { results: Array<{ id: string; properties: Record<string, string | null> }>; errors?: Array<{ message?: string; context?: Record<string, string[]> }> }

/** Returns, per contact key, why its tickets could not be written (empty when all went well). */
export async function syncTickets(ctx: SessionContext, t: TicketsBlock, delivered: Delivered[], signal: AbortSignal): Promise<Map<string, string>> {
  const failures = new Map<string, string>();
  if (delivered.length === 0) return failures;
  // ticket id -> the contact whose segment it gets (the first synced contact associated with it)
  const owner = new Map<string, Delivered>();
  const byContact = new Map(delivered.map((d) => [d.contactId, d]));
  // A contact with many tickets comes back with paging.next.after: ask again for those, from there.
  let pending: Array<{ id: string; after?: string }> = delivered.map((d) => ({ id: d.contactId }));
  while (pending.length > 0) {
    const next: Array<{ id: string; after: string }> = [];
    for (const part of chunk(pending, MAX)) {
      const info = await ctx.api.call('contact->ticket associations batch read', (c) => c.crm.associations.v4.batchApi.getPageWithHttpInfo('contacts', 'tickets', { inputs: part }), signal);
      for (const r of (info.data as unknown as AssocData).results ?? []) {
        const d = byContact.get(String(r._from.id));
        if (!d) continue;
        for (const to of r.to) if (!owner.has(String(to.toObjectId))) owner.set(String(to.toObjectId), d);
        const after = r.paging?.next?.after;
        if (after) next.push({ id: d.contactId, after });
      }
    }
    pending = next;
  }
  if (owner.size === 0) return failures;
  const props = ['hs_pipeline', 'hs_pipeline_stage', t.segment_property, t.priority_property];
  const updates: Array<{ id: string; properties: Record<string, string>; owner: Delivered }> = [];
  for (const part of chunk([...owner.keys()], MAX)) {
    const info = await ctx.api.call('tickets batch read', (c) => c.crm.tickets.batchApi.readWithHttpInfo({ inputs: part.map((id) => ({ id })), properties: props, propertiesWithHistory: [] }), signal);
    for (const ticket of (info.data as unknown as TicketData).results ?? []) {
      const p = ticket.properties;
      if (!t.open_stages.includes(p.hs_pipeline_stage ?? '')) continue;
      if (t.pipeline !== undefined && p.hs_pipeline !== t.pipeline) continue;
      const d = owner.get(ticket.id)!;
      const want: Record<string, string> = { [t.segment_property]: d.segment };
      const priority = t.priority[d.segment];
      if (priority !== undefined) want[t.priority_property] = priority;
      // Only what differs: a rerun after a crash costs reads, not writes.
      if (Object.entries(want).some(([k, v]) => p[k] !== v)) updates.push({ id: ticket.id, properties: want, owner: d });
    }
  }
  for (const part of chunk(updates, MAX)) {
    const info = await ctx.api.call('tickets batch update', (c) => c.crm.tickets.batchApi.updateWithHttpInfo({ inputs: part.map((u) => ({ id: u.id, properties: u.properties })) }), signal);
    for (const e of (info.data as unknown as TicketData).errors ?? []) {
      for (const id of e.context?.ids ?? e.context?.id ?? []) {
        const u = part.find((x) => x.id === id);
        if (u) failures.set(u.owner.key, `ticket ${id}: ${e.message ?? 'rejected'}`);
      }
    }
  }
  ctx.log.debug({ contacts: delivered.length, tickets: owner.size, updated: updates.length }, 'hubspot tickets synced');
  return failures;
}
