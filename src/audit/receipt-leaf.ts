import type { ReceiptLeaf } from '../state/audit.ts';
import { leafHash } from './hash.ts';
import { pseudonym } from './keys.ts';

// On its own (not in trail.ts) so that the receipts tree's worker thread loads only this, hash.ts and keys.ts.

/** The leaf of a run's receipt: its key as a pseudonym, no payload or message. */
export function receiptLeaf(r: ReceiptLeaf): string {
  return leafHash(receiptLeafText(r));
}

/**
 * The leaf's RFC 8785 text, written out: its members in the canonical (sorted) order, each value as
 * JSON.stringify gives it, which is RFC 8785's form for strings, null and finite numbers. The same bytes as
 * canonical() of the object (test/audit-hash.test.ts), at a fifth of the cost: a run's seal makes one per
 * receipt.
 */
export function receiptLeafText(r: ReceiptLeaf): string {
  if (!Number.isFinite(r.attempt)) throw new Error(`receipt of ${pseudonym(r.key)}: attempt ${r.attempt} is not a number`);
  const j = JSON.stringify;
  return `{"attempt":${j(r.attempt)},"destination_id":${j(r.destinationId)},"error_code":${j(r.errorCode)},"key":${j(pseudonym(r.key))},"op":${j(r.op)},"payload_hash":${j(r.payloadHash)},"request_id":${j(r.requestId)},"status":${j(r.status)}}`;
}
