import { createHash } from 'node:crypto';
import type { Change, Payload } from '../types.ts';

/**
 * Turns a Change into the CDP calls that carry it: an identify with the mapped traits, and for a removal
 * cleared traits and/or a track event. Each call gets a messageId derived only from what it carries, so
 * sending the same change again (a retried batch, a run resumed after a crash) produces the same ids and the
 * CDP drops the copy.
 */

export type RemovalStyle = 'clear_traits' | 'track' | 'both';

export interface CdpEvent {
  type: 'identify' | 'track';
  userId?: string;
  anonymousId?: string;
  messageId: string;
  timestamp: string;
  traits?: Payload;
  event?: string;
  properties?: Payload;
  context: { library: { name: string }; segsync: { mapping: string } };
}

export interface EventContext {
  mapping: string;
  /** 'userId' or 'anonymousId': which identity field holds the source key. */
  identity: 'userId' | 'anonymousId';
  /** Every trait the mapping writes, so a removal clears all of them even if `before` is partial. */
  mappedTraits: string[];
  removal: RemovalStyle;
  removalEvent: string;
  now: Date;
}

function stableJson(p: Payload | null): string {
  if (p === null) return 'null';
  return JSON.stringify(Object.keys(p).sort().map((k) => [k, p[k]]));
}

/**
 * `segsync-` + sha256 hex (72 chars; Segment wants < 100). Besides (mapping, key, payload hash) it covers
 * the call kind, the previous payload and the previous delivery's messageId (the change's destinationId):
 * without those, a user moving A -> B -> A inside the CDP's dedup window would send A's first id again and
 * the CDP would drop the move back to A as a duplicate.
 */
export function messageIdFor(mapping: string, change: Change, kind: string): string {
  const h = createHash('sha256')
    .update([mapping, change.key, kind, change.payloadHash, stableJson(change.before), change.destinationId ?? ''].join('\u0000'))
    .digest('hex');
  return `segsync-${h}`;
}

export function eventsFor(change: Change, ctx: EventContext): CdpEvent[] {
  const base = {
    [ctx.identity]: change.key,
    timestamp: ctx.now.toISOString(),
    context: { library: { name: 'segsync' }, segsync: { mapping: ctx.mapping } },
  };
  if (change.op !== 'remove') {
    return [{ ...base, type: 'identify', messageId: messageIdFor(ctx.mapping, change, 'identify'), traits: { ...(change.after ?? {}) } }];
  }
  const out: CdpEvent[] = [];
  if (ctx.removal === 'clear_traits' || ctx.removal === 'both') {
    const names = new Set([...ctx.mappedTraits, ...Object.keys(change.before ?? {})]);
    const traits: Payload = Object.fromEntries([...names].map((n) => [n, null]));
    out.push({ ...base, type: 'identify', messageId: messageIdFor(ctx.mapping, change, 'identify-clear'), traits });
  }
  if (ctx.removal === 'track' || ctx.removal === 'both') {
    // The track event says what the user left: the previous traits, as properties.
    out.push({ ...base, type: 'track', event: ctx.removalEvent, messageId: messageIdFor(ctx.mapping, change, `track:${ctx.removalEvent}`), properties: { ...(change.before ?? {}) } });
  }
  return out;
}

export function eventBytes(e: CdpEvent): number {
  return Buffer.byteLength(JSON.stringify(e));
}
