import type { Db } from './transition.ts';

/**
 * A digest of a run's planned items (key, op, payload hash, in key order): two plans with the same digest send
 * exactly the same changes. Approval binds to it: a held plan is delivered only while the model still plans it.
 */
export async function planFingerprint(db: Db, schema: string, runId: number): Promise<string> {
  const { rows } = await db.query<{ d: string | null }>(
    `SELECT md5(string_agg(key || ':' || op || ':' || coalesce(payload_hash, ''), ',' ORDER BY key)) AS d FROM ${schema}.run_items WHERE run_id = $1`, [runId]);
  return rows[0]?.d ?? 'empty';
}

/** Forgets a run's planned items (an approved run whose model changed is planned again under its id). */
export async function dropItems(db: Db, schema: string, runId: number): Promise<void> {
  await db.query(`DELETE FROM ${schema}.run_items WHERE run_id = $1`, [runId]);
}
