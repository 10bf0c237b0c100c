import type { ModelTables } from './bookkeeping.ts';
import type { Queryable } from './payments.ts';

/**
 * Writes the rendered model SQL into the model tables. The column list comes from the SQL itself
 * (CREATE TABLE AS ... WITH NO DATA), so an edited model gets matching tables on its next (full) build.
 */

const HIST_PK = 'rfm_segments_hist_pkey';
const CURRENT_PK = 'rfm_current_segments_pkey';

export async function relationExists(db: Queryable, relation: string): Promise<boolean> {
  const { rows } = await db.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [relation]);
  return rows[0]?.present === true;
}

/**
 * Full rebuild of the history. With a changed model the tables are recreated from the SQL; otherwise they
 * are truncated, so readers and grants keep the same table. The key is dropped while loading and rebuilt
 * once after, which is cheaper than maintaining it row by row.
 */
export async function rebuildHistory(db: Queryable, t: ModelTables, histSql: string, recreate: boolean): Promise<void> {
  if (recreate || !(await relationExists(db, t.hist))) {
    await db.query(`DROP TABLE IF EXISTS ${t.current}`);
    await db.query(`DROP TABLE IF EXISTS ${t.hist}`);
    await db.query(`CREATE TABLE ${t.hist} AS ${histSql} WITH NO DATA`);
  } else {
    await db.query(`TRUNCATE ${t.hist}`);
    await db.query(`ALTER TABLE ${t.hist} DROP CONSTRAINT IF EXISTS ${HIST_PK}`);
  }
  await db.query(`INSERT INTO ${t.hist} ${histSql}`);
  // snapshot_at first: builds delete and read whole snapshots, and the latest one is the current model.
  await db.query(`ALTER TABLE ${t.hist} ADD CONSTRAINT ${HIST_PK} PRIMARY KEY (snapshot_at, user_id)`);
}

/** Replaces the given snapshots (and those no longer wanted) with the SQL's rows from `from` on. */
export async function refreshHistory(db: Queryable, t: ModelTables, histSql: string, stale: Date[]): Promise<void> {
  if (stale.length) await db.query(`DELETE FROM ${t.hist} WHERE snapshot_at = ANY($1::timestamptz[])`, [stale]);
  await db.query(`INSERT INTO ${t.hist} ${histSql}`);
}

export async function rebuildCurrent(db: Queryable, t: ModelTables, currentSql: string): Promise<void> {
  if (!(await relationExists(db, t.current))) {
    await db.query(`CREATE TABLE ${t.current} AS ${currentSql} WITH NO DATA`);
    await db.query(`ALTER TABLE ${t.current} ADD CONSTRAINT ${CURRENT_PK} PRIMARY KEY (user_id)`);
  } else {
    await db.query(`TRUNCATE ${t.current}`);
  }
  await db.query(`INSERT INTO ${t.current} ${currentSql}`);
}
