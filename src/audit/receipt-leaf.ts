import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { ReceiptLeaf } from '../state/audit.ts';
import { leafHash } from './hash.ts';

// On its own, with nothing but node:crypto and hash.ts, so that the receipts tree's worker thread
// (receipts-tree-worker.ts) loads only the hashing, not the configuration, errors and PII modules.

/**
 * A receipt's leaf fields as the run has them (FinalOutcome) or the table gives them (ReceiptLeaf): an absent
 * destination id, error code or request id is null in the leaf.
 */
export type LeafFields = Pick<ReceiptLeaf, 'key' | 'op' | 'status' | 'payloadHash' | 'attempt'>
  & { destinationId?: string | null; errorCode?: string | null; requestId?: string | null };

/** The HMAC key of a pseudonym key's text (keys.ts caches the configured one; the worker thread makes its own). */
export function hmacKeyOf(text: string): KeyObject {
  return createSecretKey(Buffer.from(text, 'utf8'));
}

/** A keyed pseudonym under an HMAC key (keys.ts `pseudonym` gives the configured one). */
export function pseudonymUnder(key: KeyObject, value: string): string {
  return 'p_' + createHmac('sha256', key).update(value, 'utf8').digest('base64url').slice(0, 22);
}

/**
 * The leaf's RFC 8785 text, written out: its members in the canonical (sorted) order, each value as
 * JSON.stringify gives it, which is RFC 8785's form for strings, null and finite numbers. The same bytes as
 * canonical() of the object (test/audit-hash.test.ts), at a fifth of the cost: a run's seal makes one per
 * receipt. `pseudonymOf` names the key.
 */
export function receiptLeafTextWith(r: LeafFields, pseudonymOf: (key: string) => string): string {
  if (!Number.isFinite(r.attempt)) throw new Error(`receipt of ${pseudonymOf(r.key)}: attempt ${r.attempt} is not a number`);
  // A finite number's JSON text is its String() (RFC 8785 follows ECMAScript's Number.prototype.toString).
  return `{"attempt":${r.attempt},"destination_id":${jsonText(r.destinationId)},"error_code":${jsonText(r.errorCode)},"key":${jsonText(pseudonymOf(r.key))},"op":${jsonText(r.op)},"payload_hash":${jsonText(r.payloadHash)},"request_id":${jsonText(r.requestId)},"status":${jsonText(r.status)}}`;
}

/** What JSON.stringify escapes in a string: '"', '\\', control characters; and surrogates, of which a lone one is. */
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;
/**
 * A string (or null) as JSON.stringify writes it: quoted as it is when nothing in it is escaped, which is every
 * id, hash and word of a receipt but the rare one; otherwise JSON.stringify's own text.
 */
function jsonText(s: string | null | undefined): string {
  if (s == null) return 'null';
  return ESCAPED.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** The leaf of a run's receipt: its key as a pseudonym, no payload or message. */
export function receiptLeafWith(r: LeafFields, pseudonymOf: (key: string) => string): string {
  return leafHash(receiptLeafTextWith(r, pseudonymOf));
}

/**
 * A batch of receipt leaves as one string, for the worker thread: one structured clone of a string is far
 * cheaper than of thousands of objects or arrays. Each text is its length, ':' and itself (any character may
 * follow, nothing is escaped), a null (or absent) text is '-', the attempt is its number and ';'.
 */
export function packLeaves(rows: Iterable<LeafFields>): string {
  const t = (s: string | null | undefined) => (s == null ? '-' : `${s.length}:${s}`);
  let out = '';
  for (const r of rows) out += `${t(r.key)}${t(r.op)}${t(r.status)}${t(r.payloadHash)}${t(r.destinationId)}${t(r.errorCode)}${r.attempt};${t(r.requestId)}`;
  return out;
}

/** packLeaves' rows back, in order. */
export function* unpackLeaves(packed: string): Generator<ReceiptLeaf> {
  let at = 0;
  const text = (): string | null => {
    if (packed[at] === '-') {
      at++;
      return null;
    }
    const colon = packed.indexOf(':', at);
    const len = Number(packed.slice(at, colon));
    if (colon < 0 || !Number.isInteger(len)) throw new Error(`packed receipt leaves: no length at ${at}`);
    at = colon + 1 + len;
    return packed.slice(colon + 1, at);
  };
  while (at < packed.length) {
    const key = text()!;
    const op = text()!;
    const status = text()!;
    const payloadHash = text();
    const destinationId = text();
    const errorCode = text();
    const semi = packed.indexOf(';', at);
    const attempt = Number(packed.slice(at, semi));
    at = semi + 1;
    yield { key, op, status, payloadHash, destinationId, errorCode, attempt, requestId: text() } as ReceiptLeaf;
  }
}
