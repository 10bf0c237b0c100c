import type { Db } from './transition.ts';

export interface TokenRow {
  id: string;
  name: string;
  role: string;
  createdAt: Date;
  createdBy: string;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  revokedBy: string | null;
}

type Raw = { id: string; name: string; role: string; created_at: Date; created_by: string; expires_at: Date | null; last_used_at: Date | null; revoked_at: Date | null; revoked_by: string | null };
const COLS = 'id, name, role, created_at, created_by, expires_at, last_used_at, revoked_at, revoked_by';
const row = (r: Raw): TokenRow => ({ id: r.id, name: r.name, role: r.role, createdAt: r.created_at, createdBy: r.created_by, expiresAt: r.expires_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at, revokedBy: r.revoked_by });

export async function insertToken(db: Db, schema: string, t: { id: string; name: string; role: string; hash: string; createdBy: string; expiresAt: Date | null }): Promise<TokenRow> {
  const { rows } = await db.query<Raw>(`INSERT INTO ${schema}.api_tokens (id, name, role, token_hash, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLS}`,
    [t.id, t.name, t.role, t.hash, t.createdBy, t.expiresAt]);
  return row(rows[0]!);
}

/**
 * The live token with this hash (not revoked, not expired), its last use stamped (at most once a minute).
 * `previousUse` is the last use before this one: a use after an hour's silence starts a session (a login).
 */
export async function useToken(db: Db, schema: string, hash: string): Promise<(TokenRow & { previousUse: Date | null }) | null> {
  const { rows } = await db.query<Raw & { previous_use: Date | null }>(
    `WITH t AS (SELECT id, last_used_at FROM ${schema}.api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))
     UPDATE ${schema}.api_tokens a SET last_used_at = CASE WHEN a.last_used_at IS NULL OR a.last_used_at < now() - interval '1 minute' THEN now() ELSE a.last_used_at END
     FROM t WHERE a.id = t.id RETURNING ${COLS.split(', ').map((c) => `a.${c}`).join(', ')}, t.last_used_at AS previous_use`, [hash]);
  return rows[0] ? { ...row(rows[0]), previousUse: rows[0].previous_use } : null;
}

export async function listTokens(db: Db, schema: string): Promise<TokenRow[]> {
  const { rows } = await db.query<Raw>(`SELECT ${COLS} FROM ${schema}.api_tokens ORDER BY created_at, id`);
  return rows.map(row);
}

export async function revokeToken(db: Db, schema: string, id: string, by: string): Promise<TokenRow | null> {
  const { rows } = await db.query<Raw>(`UPDATE ${schema}.api_tokens SET revoked_at = now(), revoked_by = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING ${COLS}`, [id, by]);
  return rows[0] ? row(rows[0]) : null;
}

/** Whether any token could authenticate now (not revoked, not expired). */
export async function hasLiveTokens(db: Db, schema: string): Promise<boolean> {
  const { rows } = await db.query<{ live: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${schema}.api_tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS live`);
  return rows[0]!.live;
}
