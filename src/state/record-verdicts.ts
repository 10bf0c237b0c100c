import type pg from 'pg';
import type { ReadBackResult } from '../../destinations/types.ts';
import { withTransaction } from '../db/transaction.ts';

/**
 * Stores one chunk of read-back verdicts (a reconciliation row each, the delivered state's latest verdict)
 * in one transaction; with `repair`, drifted and missing records lose their confirmation so the next run's
 * diff plans them again (missing -> create, drifted -> update with the model's current values). Returns how
 * many records were queued again.
 */
export async function recordVerdicts(pool: pg.Pool, schema: string, mapping: string, verdicts: ReadBackResult[], repair: boolean): Promise<number> {
  const keys = verdicts.map((v) => v.key);
  const statuses = verdicts.map((v) => v.status);
  return withTransaction(pool, async (client) => {
    await client.query(
      `INSERT INTO ${schema}.reconciliations (mapping, key, status, expected_hash, drifted_fields, actual, detail)
       SELECT $1, u.key, u.status, d.payload_hash, CASE WHEN u.fields = '' THEN NULL ELSE string_to_array(u.fields, ',') END, u.actual::jsonb, u.detail
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(key, status, fields, actual, detail)
       JOIN ${schema}.delivered d ON d.mapping = $1 AND d.key = u.key`,
      [mapping, keys, statuses, verdicts.map((v) => (v.driftedFields ?? []).join(',')),
        verdicts.map((v) => (v.actual ? JSON.stringify(v.actual) : null)), verdicts.map((v) => v.detail ?? null)]);
    await client.query(
      `UPDATE ${schema}.delivered d SET reconcile_status = u.status, reconciled_at = now()
       FROM unnest($2::text[], $3::text[]) AS u(key, status) WHERE d.mapping = $1 AND d.key = u.key`,
      [mapping, keys, statuses]);
    if (!repair) return 0;
    const { rowCount } = await client.query(
      `UPDATE ${schema}.delivered d SET payload_hash = CASE WHEN u.status = 'missing' THEN NULL ELSE 'repair:' || d.payload_hash END,
         payload = CASE WHEN u.status = 'missing' THEN NULL ELSE d.payload END
       FROM unnest($2::text[], $3::text[]) AS u(key, status) WHERE d.mapping = $1 AND d.key = u.key AND u.status IN ('drifted', 'missing')`,
      [mapping, keys, statuses]);
    return rowCount ?? 0;
  });
}
