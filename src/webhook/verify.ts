import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The webhook signature scheme, shared by the sender (destinations/webhook) and receivers. A request carries
 *   X-Segsync-Timestamp: <unix seconds>
 *   X-Segsync-Signature: v1=<hex HMAC-SHA256(secret, `${timestamp}.${raw body}`)>
 * Signing the timestamp with the body means a captured request cannot be replayed later than the receiver's
 * tolerance; within it, and for segsync's own resends, receivers apply each change's `id` once
 * (docs/destinations/webhook.md).
 */

export const TIMESTAMP_HEADER = 'x-segsync-timestamp';
export const SIGNATURE_HEADER = 'x-segsync-signature';
export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const DEFAULT_TOLERANCE_SEC = 300;

export function signatureFor(secret: string, timestamp: string | number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export type VerifyResult = { ok: true } | { ok: false; reason: 'missing' | 'malformed' | 'expired' | 'mismatch'; message: string };

/**
 * Checks a request's signature. `signature` may list several comma-separated `v1=` values (a sender rotating
 * secrets); one match is enough. `body` must be the raw body exactly as received, before any JSON parsing.
 */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string | null | undefined,
  body: string,
  signature: string | null | undefined,
  opts: { toleranceSec?: number; now?: number } = {},
): VerifyResult {
  if (!timestamp || !signature) return { ok: false, reason: 'missing', message: 'missing X-Segsync-Timestamp or X-Segsync-Signature header' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'malformed', message: 'X-Segsync-Timestamp is not unix seconds' };
  const tolerance = opts.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  const nowSec = Math.floor((opts.now ?? Date.now()) / 1000);
  if (Math.abs(nowSec - Number(timestamp)) > tolerance) {
    return { ok: false, reason: 'expired', message: `timestamp is ${nowSec - Number(timestamp)} s away from now; the window is ±${tolerance} s` };
  }
  const expected = Buffer.from(signatureFor(secret, timestamp, body));
  const candidates = signature.split(',').map((s) => s.trim()).filter((s) => s.startsWith('v1='));
  if (!candidates.length) return { ok: false, reason: 'malformed', message: 'X-Segsync-Signature has no v1= value' };
  for (const c of candidates) {
    const got = Buffer.from(c);
    if (got.length === expected.length && timingSafeEqual(got, expected)) return { ok: true };
  }
  return { ok: false, reason: 'mismatch', message: 'signature does not match the body (wrong secret, or the body was changed)' };
}
