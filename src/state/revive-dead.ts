import type { Db } from './transition.ts';

/** Clears the dead mark of a mapping's records so the next run sends them again; returns how many. */
export async function reviveDead(db: Db, schema: string, mapping: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE ${schema}.delivered SET dead_at = NULL, fail_count = 0 WHERE mapping = $1 AND dead_at IS NOT NULL`, [mapping]);
  return rowCount ?? 0;
}
