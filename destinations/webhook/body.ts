import { createHash } from 'node:crypto';
import type { Change, Payload } from '../types.ts';

/** The JSON a webhook receiver gets, and the idempotency key that stays the same when a batch is resent. */

export interface WebhookChange {
  key: string;
  op: Change['op'];
  before: Payload | null;
  after: Payload | null;
  payload_hash: string;
}

export interface WebhookBody {
  mapping: string;
  /** segsync's run id (absent for `segsync setup`/`validate` checks). */
  run?: number;
  /** What a `remove` means for this mapping: clear the fields or delete the record. */
  on_removed: string;
  sent_at: string;
  changes: WebhookChange[];
}

export function toWebhookChanges(changes: Change[]): WebhookChange[] {
  return changes.map((c) => ({ key: c.key, op: c.op, before: c.before, after: c.after, payload_hash: c.payloadHash }));
}

/** sha256 over the mapping and the changes (not sent_at): a resent batch keeps its key. */
export function idempotencyKey(mapping: string, changes: WebhookChange[]): string {
  const h = createHash('sha256').update(mapping).update('\u0000');
  for (const c of changes) h.update(JSON.stringify([c.key, c.op, c.payload_hash, c.before])).update('\n');
  return `segsync-${h.digest('hex')}`;
}
