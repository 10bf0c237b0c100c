import type { Actor } from './actor.ts';
import type { Db } from './transition.ts';

/**
 * Who a held run must not be approved by (mayApprove, src/auth/authenticate.ts): whoever triggered it, and whoever
 * brought in the config it was planned with (the actor of the audited config.loaded/config.reloaded of its
 * config hash). Null when the run does not exist.
 */
export async function approvalSubject(db: Db, schema: string, runId: number): Promise<{ actor: Actor; configChangedBy: Actor[] } | null> {
  const run = await db.query<{ actor_type: Actor['type']; actor_id: string; config_hash: string }>(`SELECT actor_type, actor_id, config_hash FROM ${schema}.runs WHERE id = $1`, [runId]);
  const r = run.rows[0];
  if (!r) return null;
  const { rows } = await db.query<{ actor_type: Actor['type']; actor_id: string }>(
    `SELECT DISTINCT actor_type, actor_id FROM ${schema}.audit
     WHERE action IN ('config.loaded', 'config.reloaded') AND subject = 'config' AND (entry::jsonb -> 'details' ->> 'hash') = $1`, [r.config_hash]);
  return { actor: { type: r.actor_type, id: r.actor_id }, configChangedBy: rows.map((x) => ({ type: x.actor_type, id: x.actor_id })) };
}
