import type { ModelTables } from './bookkeeping.ts';
import { TRIM_CHARACTERS } from '../config/transforms.ts';
import { quoteLiteral } from '../db/sql.ts';
import { inSavepoint } from '../db/transaction.ts';
import type { Queryable } from './payments.ts';

/**
 * Writes the rendered model SQL into the model tables. The column list comes from the SQL itself
 * (CREATE TABLE AS ... WITH NO DATA), so an edited model gets matching tables on its next (full) build.
 */

const HIST_PK = 'rfm_segments_hist_pkey';

/**
 * A text user_id may not be blank: the check src/sync/plan.ts otherwise makes on every run (a scan of the whole
 * current model, about 2 s at 1M customers), made once by the database. Blank as plan.ts: nothing but ASCII
 * whitespace (TRIM_CHARACTERS, in a plain literal: PostgreSQL keeps the characters as they are).
 */
export const HIST_KEY_CHECK = 'rfm_segments_hist_user_id_not_blank';
const WHITESPACE = quoteLiteral(TRIM_CHARACTERS);
/** The check as pg_get_constraintdef shows it: for a text user_id, and for a varchar one (cast to text). */
export const HIST_KEY_CHECK_DEFS = ['user_id', '(user_id)::text'].map((col) => `CHECK ((btrim(${col}, ${WHITESPACE}::text) <> ''::text))`);

/** The error of a row (or a table) the not-blank check refuses. */
function refusedByKeyCheck(err: unknown): boolean {
  const e = err as { code?: string; constraint?: string };
  return e.code === '23514' && e.constraint === HIST_KEY_CHECK;
}

/**
 * Adds the not-blank check to a history whose text user_id satisfies it: one scan, under a savepoint (builds
 * run in a transaction). A history with blank keys keeps none: the sync then finds them itself and refuses the
 * run with examples, as for any source.
 */
async function ensureKeyCheck(db: Queryable, hist: string): Promise<void> {
  const { rows } = await db.query<{ text: boolean; present: boolean }>(
    `SELECT a.atttypid IN ('text'::regtype, 'varchar'::regtype) AS text,
            EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = a.attrelid AND c.conname = $2) AS present
     FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = 'user_id' AND NOT a.attisdropped`, [hist, HIST_KEY_CHECK]);
  if (!rows[0]?.text || rows[0].present) return;
  try {
    await inSavepoint(db, () => db.query(`ALTER TABLE ${hist} ADD CONSTRAINT ${HIST_KEY_CHECK} CHECK (btrim(user_id::text, ${WHITESPACE}) <> '')`));
  } catch (err) {
    if (!refusedByKeyCheck(err)) throw err;
  }
}

/**
 * The history's INSERT under the not-blank check: should the new snapshots hold a blank user_id, the check is
 * dropped and the rows inserted all the same (the build does not judge keys; the sync refuses them).
 */
async function insertHistory(db: Queryable, hist: string, histSql: string): Promise<void> {
  try {
    await inSavepoint(db, () => db.query(`INSERT INTO ${hist} ${histSql}`));
  } catch (err) {
    if (!refusedByKeyCheck(err)) throw err;
    await db.query(`ALTER TABLE ${hist} DROP CONSTRAINT ${HIST_KEY_CHECK}`);
    await db.query(`INSERT INTO ${hist} ${histSql}`);
  }
}

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
    await dropRelation(db, t.current);
    await dropRelation(db, t.hist);
    await db.query(`CREATE TABLE ${t.hist} AS ${histSql} WITH NO DATA`);
  } else {
    await db.query(`TRUNCATE ${t.hist}`);
    await db.query(`ALTER TABLE ${t.hist} DROP CONSTRAINT IF EXISTS ${HIST_PK}`);
    await db.query(`ALTER TABLE ${t.hist} DROP CONSTRAINT IF EXISTS ${HIST_KEY_CHECK}`);
  }
  await db.query(`INSERT INTO ${t.hist} ${histSql}`);
  // snapshot_at first: builds delete and read whole snapshots, and the latest one is the current model.
  await db.query(`ALTER TABLE ${t.hist} ADD CONSTRAINT ${HIST_PK} PRIMARY KEY (snapshot_at, user_id)`);
  // Like the key, checked once after loading rather than row by row.
  await ensureKeyCheck(db, t.hist);
}

/** Replaces the given snapshots (and those no longer wanted) with the SQL's rows from `from` on. */
export async function refreshHistory(db: Queryable, t: ModelTables, histSql: string, stale: Date[]): Promise<void> {
  if (stale.length) await db.query(`DELETE FROM ${t.hist} WHERE snapshot_at = ANY($1::timestamptz[])`, [stale]);
  await insertHistory(db, t.hist, histSql);
  // A history built before the check, or whose check a blank key dropped: added again once it holds.
  await ensureKeyCheck(db, t.hist);
}

/**
 * rfm_current_segments is a view over the history's latest snapshot: it always equals that snapshot, and a
 * refresh writes nothing for it. (Created once, and again when the model SQL changed.)
 */
export async function ensureCurrentView(db: Queryable, t: ModelTables, currentSql: string, recreate: boolean): Promise<void> {
  if (recreate) await dropRelation(db, t.current);
  const created = !(await relationExists(db, t.current));
  if (created) await db.query(`CREATE VIEW ${t.current} AS ${currentSql}`);
  await markCurrentKey(db, t, currentSql, created);
}

/** The comment that says a view is the latest snapshot of a history keyed (snapshot_at, user_id). */
export const CURRENT_KEY_MARK = /^segsync: one row per user_id: the latest snapshot of (.+), primary key \(snapshot_at, user_id\); view definition md5 ([0-9a-f]{32})$/;

/**
 * A sync plans against this view, and must know that user_id is unique and never NULL in it: without proof it
 * groups the whole model by key first (about 1.9 s at 1M customers, every run). The proof: the view is exactly
 * `SELECT * FROM hist WHERE snapshot_at = (SELECT MAX(snapshot_at) FROM hist)`, one snapshot of a table whose
 * primary key is (snapshot_at, user_id). The view's comment records that, with the md5 of the view's definition
 * as PostgreSQL holds it; the sync (src/sync/plan.ts keyEnforced) trusts it only while that definition and the
 * history's primary key are unchanged. An edited current model gets no mark (and the full key check).
 */
async function markCurrentKey(db: Queryable, t: ModelTables, currentSql: string, created: boolean): Promise<void> {
  const { rows: kind } = await db.query<{ kind: string | null }>('SELECT (SELECT relkind FROM pg_class WHERE oid = to_regclass($1))::text AS kind', [t.current]);
  if (kind[0]?.kind !== 'v') return;
  const bare = currentSql.replace(/--[^\n]*/g, ' ').replace(/\s+/g, ' ').trim().toLowerCase();
  const h = t.hist.toLowerCase();
  const canonical = `select * from ${h} where snapshot_at = (select max(snapshot_at) from ${h})`;
  const { rows } = await db.query<{ md5: string; comment: string | null }>(
    `SELECT md5(pg_get_viewdef(to_regclass($1))) AS md5, obj_description(to_regclass($1), 'pg_class') AS comment`, [t.current]);
  // Already marked for this very definition (every refresh after the first): nothing to write.
  const mark = rows[0]!.comment ? CURRENT_KEY_MARK.exec(rows[0]!.comment) : null;
  if (!created && bare === canonical && mark && mark[1] === t.hist && mark[2] === rows[0]!.md5) return;
  let same = created;
  if (!same && bare === canonical) {
    // A view kept from an earlier build (or edited since): marked only when it is still exactly the model's SQL,
    // compared as PostgreSQL deparses both.
    await db.query(`CREATE TEMP VIEW _segsync_current_probe AS ${currentSql}`);
    const probe = await db.query<{ md5: string }>(`SELECT md5(pg_get_viewdef('pg_temp._segsync_current_probe'::regclass)) AS md5`);
    await db.query('DROP VIEW pg_temp._segsync_current_probe');
    same = probe.rows[0]!.md5 === rows[0]!.md5;
  }
  if (bare !== canonical || !same) {
    await db.query(`COMMENT ON VIEW ${t.current} IS NULL`);
    return;
  }
  const text = `segsync: one row per user_id: the latest snapshot of ${t.hist}, primary key (snapshot_at, user_id); view definition md5 ${rows[0]!.md5}`;
  await db.query(`COMMENT ON VIEW ${t.current} IS '${text.replaceAll("'", "''")}'`);
}

/** Drops a table or view of that name (earlier versions kept the current segments as a table). */
export async function dropRelation(db: Queryable, relation: string): Promise<void> {
  const { rows } = await db.query<{ kind: string | null }>('SELECT (SELECT relkind FROM pg_class WHERE oid = to_regclass($1))::text AS kind', [relation]);
  const kind = rows[0]?.kind;
  if (kind === 'v') await db.query(`DROP VIEW ${relation}`);
  else if (kind) await db.query(`DROP TABLE ${relation}`);
}
