import { createHash } from 'node:crypto';
import type { Change, Payload } from '../types.ts';

/**
 * The JSON a webhook receiver gets, and the idempotency ids that let it drop repeats. Each change carries its
 * own id; the request's Idempotency-Key is derived from the set of ids it carries, so the same changes sent
 * again (a retry, a resend after a crash, other batch boundaries) carry the same ids, and an identical request
 * the same key.
 */

export interface WebhookChange {
  /** The change's idempotency id (see changeId): a receiver applies each id once. */
  id: string;
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

function stableJson(p: Payload | null): string {
  if (p === null) return 'null';
  return JSON.stringify(Object.keys(p).sort().map((k) => [k, p[k]]));
}

/**
 * `segsync-` + sha256 over the mapping, the key, the op, the payload hash, the previous payload and the
 * previous delivery's id (the change's destinationId), and, only when `attempt` > 1, the attempt number.
 *
 * - Nothing of the batch, the run or the time goes in: the same change resent (after a timeout or reset, by
 *   the next run after a crash, in a batch cut differently) has the same id, and the receiver drops the copy.
 * - The previous payload and delivery id make a move A -> B -> A -> B give four ids, not the first pair twice.
 * - The engine sends a change with attempt n > 1 only after its previous send got a definite failure answer
 *   (the receiver said `retryable: true` for it). That send is a new attempt and gets a new id, so a receiver
 *   (or a gateway in front of it) that remembers answers per id or per Idempotency-Key cannot answer it with
 *   the failure it gave before. A resend after no answer, or after a whole-request failure (429, 5xx, reset)
 *   that the engine retries as is, keeps the attempt number and so the id.
 */
export function changeId(mapping: string, change: Change): string {
  const parts = [mapping, change.key, change.op, change.payloadHash, stableJson(change.before), change.destinationId ?? ''];
  if (change.attempt > 1) parts.push(`attempt ${change.attempt}`);
  return `segsync-${createHash('sha256').update(parts.join('\u0000')).digest('hex')}`;
}

export function toWebhookChanges(mapping: string, changes: Change[]): WebhookChange[] {
  return changes.map((c) => ({ id: changeId(mapping, c), key: c.key, op: c.op, before: c.before, after: c.after, payload_hash: c.payloadHash }));
}

/**
 * The request's Idempotency-Key: sha256 over the mapping and the sorted change ids (not sent_at or the run),
 * so the same set of changes always has the same key, whatever their order.
 */
export function idempotencyKey(mapping: string, changes: WebhookChange[]): string {
  const ids = changes.map((c) => c.id).sort();
  return `segsync-${createHash('sha256').update(mapping).update('\u0000').update(ids.join('\n')).digest('hex')}`;
}
