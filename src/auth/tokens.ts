import { createHash, randomBytes } from 'node:crypto';
import { UsageError } from '../errors.ts';
import { audit } from '../audit/trail.ts';
import type { Actor } from '../state/actor.ts';
import { formatActor } from '../state/actor.ts';
import { insertToken, revokeToken, type TokenRow } from '../state/tokens.ts';
import type { Db } from '../state/transition.ts';
import { ROLES, type Role } from './permissions.ts';

/**
 * API tokens: `ssk_` + 40 base62 characters of randomness + a 6-character base62 CRC32 of them (GitHub's
 * format: leak scanners can spot one by its prefix and check it offline). Only its SHA-256 is stored; a
 * high-entropy token needs no slow hash.
 */
export const TOKEN_PREFIX = 'ssk_';
const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function base62(buf: Buffer, length: number): string {
  let n = BigInt('0x' + (buf.toString('hex') || '0'));
  let s = '';
  while (s.length < length) {
    s = B62[Number(n % 62n)] + s;
    n /= 62n;
  }
  return s;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, i) => {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(text: string): number {
  let c = 0xffffffff;
  for (const b of Buffer.from(text, 'utf8')) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function checksum(body: string): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32(body));
  return base62(b, 6);
}

export function newToken(): string {
  const body = base62(randomBytes(30), 40);
  return `${TOKEN_PREFIX}${body}${checksum(body)}`;
}

/** Whether a string is shaped like one of our tokens with a correct checksum (no database needed). */
export function looksLikeToken(token: string): boolean {
  if (!token.startsWith(TOKEN_PREFIX) || token.length !== TOKEN_PREFIX.length + 46) return false;
  const body = token.slice(TOKEN_PREFIX.length, -6);
  return /^[0-9A-Za-z]+$/.test(body) && checksum(body) === token.slice(-6);
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The id shown for a token (safe in logs and lists): its prefix and first 8 characters. */
export function tokenId(token: string): string {
  return token.slice(0, TOKEN_PREFIX.length + 8);
}

export function parseExpiry(text: string, now = new Date()): Date {
  const m = /^(\d+)([hdw])$/.exec(text);
  if (!m || Number(m[1]) <= 0) throw new UsageError(`--expires: expected a duration such as 12h, 30d or 8w, not '${text}'`);
  const hours = Number(m[1]) * (m[2] === 'h' ? 1 : m[2] === 'd' ? 24 : 168);
  return new Date(now.getTime() + hours * 3_600_000);
}

export async function createToken(db: Db, schema: string, o: { role: string; name: string; expiresAt: Date | null; actor: Actor }): Promise<{ token: string; row: TokenRow }> {
  if (!(o.role in ROLES)) throw new UsageError(`--role: '${o.role}' is not a role; one of ${Object.keys(ROLES).join(', ')}`);
  if (!o.name.trim()) throw new UsageError('--name: give the token a name saying who or what uses it');
  const token = newToken();
  const row = await insertToken(db, schema, { id: tokenId(token), name: o.name, role: o.role as Role, hash: tokenHash(token), createdBy: formatActor(o.actor), expiresAt: o.expiresAt });
  await audit(db, schema, { actor: o.actor, action: 'token.created', subject: `token:${row.id}`, details: { name: o.name, role: o.role, expires_at: o.expiresAt?.toISOString() ?? null } });
  return { token, row };
}

export async function revoke(db: Db, schema: string, id: string, actor: Actor): Promise<TokenRow> {
  const row = await revokeToken(db, schema, id, formatActor(actor));
  if (!row) throw new UsageError(`no live token '${id}' (segsync tokens list shows them)`);
  await audit(db, schema, { actor, action: 'token.revoked', subject: `token:${row.id}`, details: { name: row.name, role: row.role } });
  return row;
}
