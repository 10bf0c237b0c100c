import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { getPseudonymKey } from '../audit/keys.ts';

/**
 * Opaque references for URLs: a record key or a page cursor sealed with AES-256-GCM under a key derived from the
 * pseudonym key (src/audit/keys.ts), so a link or a `nextCursor` never carries a customer's key (an e-mail
 * address, say) into browser history, proxy logs or a screenshot, and cannot be forged or edited. A fresh IV
 * each time: two links to one record do not tell they are the same.
 */

const secret = () => createHash('sha256').update('segsync:sealed-ref:').update(getPseudonymKey()).digest();

export function sealRef(value: string, prefix: 'r_' | 'c_' = 'r_'): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', secret(), iv);
  const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return prefix + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

/** The value a sealed reference stands for; null when it is not one of ours (edited, forged, another key). */
export function openRef(ref: string, prefix: 'r_' | 'c_' = 'r_'): string | null {
  if (!ref.startsWith(prefix)) return null;
  const raw = Buffer.from(ref.slice(prefix.length), 'base64url');
  if (raw.length < 12 + 16) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', secret(), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
