import type pg from 'pg';
import { systemActor } from './actor.ts';
import { closeUnsent } from './close-unsent.ts';
import { ABANDONABLE_STATES } from './machine.ts';
import { transition } from './transition.ts';

/**
 * Closes the mapping's runs a dead process left planning, planned or delivering (call with the mapping's run
 * lock held: it proves no live process has them). A run that never finished planning loses its half-written
 * intent (never sent, nothing refers to it); a run that was delivering gets its unsent items closed as
 * interrupted and the items of a batch that was sending as in_doubt. Held and approved runs are left alone.
 * Returns how many runs were closed.
 */
export async function closeAbandonedRuns(pool: pg.Pool, schema: string, mapping: string): Promise<number> {
  const { rows } = await pool.query<{ id: string; planned: boolean }>(
    `SELECT id, planned_at IS NOT NULL AS planned FROM ${schema}.runs WHERE mapping = $1 AND status = ANY($2::text[]) ORDER BY id`,
    [mapping, ABANDONABLE_STATES]);
  for (const r of rows) {
    const id = Number(r.id);
    if (r.planned) {
      const closed = await closeUnsent(pool, schema, mapping, id, 'interrupted', 'the process running it stopped before it finished');
      await transition(pool, schema, { run: id }, 'interrupted', systemActor, 'the process running it stopped before it finished', {
        error: 'the process running it stopped before it finished', outcome: { in_doubt: closed.inDoubt, interrupted: closed.unsent },
      });
    } else {
      await transition(pool, schema, { run: id }, 'interrupted', systemActor, 'the process planning it stopped', { error: 'the process running it stopped before it finished' });
    }
  }
  await dropUnplannedItems(pool, schema, mapping);
  return rows.length;
}

/**
 * Deletes the planned items of this mapping's finished runs that never reached 'planned' (no planned_at): the
 * half of a two-connection plan whose run failed or was killed before its commit. Never sent, so nothing
 * refers to them.
 */
export async function dropUnplannedItems(db: Pick<pg.Pool, 'query'>, schema: string, mapping: string): Promise<void> {
  await db.query(
    `DELETE FROM ${schema}.run_items WHERE run_id IN (
       SELECT id FROM ${schema}.runs WHERE mapping = $1 AND planned_at IS NULL AND status IN ('failed', 'interrupted', 'cancelled'))`,
    [mapping]);
}
