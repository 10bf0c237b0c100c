import type { PlanCounts } from './plan-items.ts';
import type { Db } from './transition.ts';

/** The planned counts a run stored when it was planned (create, update, remove, unchanged, dead, source, in_doubt). */
export async function runCounts(db: Db, schema: string, runId: number): Promise<PlanCounts> {
  const { rows } = await db.query<{ planned: Partial<PlanCounts> }>(`SELECT planned FROM ${schema}.runs WHERE id = $1`, [runId]);
  return { create: 0, update: 0, remove: 0, unchanged: 0, dead: 0, source: 0, in_doubt: 0, ...rows[0]?.planned };
}
