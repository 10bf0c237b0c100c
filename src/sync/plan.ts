import type pg from 'pg';
import type { Mapping } from '../config/mapping.ts';
import { inTransaction } from '../db/transaction.ts';
import { DataError } from '../errors.ts';
import { maskPii } from '../log.ts';
import { sourceStatement, type SourceQuery } from './source.ts';
import { quoteLiteral } from '../db/sql.ts';
import { CURRENT_KEY_MARK, HIST_KEY_CHECK, HIST_KEY_CHECK_DEFS } from '../models/materialize.ts';
import { TRIM_CHARACTERS } from '../config/transforms.ts';
export type { PlanCounts } from '../state/plan-items.ts';

/**
 * The whitespace a key may not consist of alone: ASCII whitespace, as the `trim` transform strips it
 * (PostgreSQL's btrim trims only spaces by default), in a plain literal that keeps the characters as they are.
 */
const BLANK = quoteLiteral(TRIM_CHARACTERS);

/**
 * Duplicate, NULL, empty or whitespace-only keys would make "the record" ambiguous or address nothing: the plan
 * fails, with examples, and nothing is sent.
 */
export async function checkKeys(client: pg.ClientBase, mapping: Mapping, q: SourceQuery): Promise<void> {
  const enforced = await keyEnforced(client, q);
  // A unique NOT NULL text key can still be '' or '  ': only that is left to look for, unless a check rules it out.
  if (enforced === 'integral' || enforced === 'text, never blank') return;
  const { rows } = await client.query<{ k: string | null; n: number; kind: 'null' | 'blank' | 'dup' }>(sourceStatement(enforced === 'text'
    ? `SELECT k, count(*)::int AS n, 'blank' AS kind FROM (SELECT ${q.key} AS k FROM ${q.from}) x WHERE btrim(k, ${BLANK}) = '' GROUP BY k ORDER BY k LIMIT 11`
    : `SELECT k, n, kind FROM (
         SELECT k, count(*)::int AS n, CASE WHEN k IS NULL THEN 'null' WHEN btrim(k, ${BLANK}) = '' THEN 'blank' ELSE 'dup' END AS kind
         FROM (SELECT ${q.key} AS k FROM ${q.from}) x GROUP BY k HAVING count(*) > 1 OR k IS NULL OR btrim(k, ${BLANK}) = ''
       ) g ORDER BY kind = 'dup', kind = 'blank', k LIMIT 11`, q.params));
  if (!rows.length) return;
  const nulls = rows.find((r) => r.kind === 'null');
  const blanks = rows.filter((r) => r.kind === 'blank');
  const dups = rows.filter((r) => r.kind === 'dup');
  const parts: string[] = [];
  if (nulls) parts.push(`${nulls.n} row(s) with a NULL ${mapping.source.key}`);
  if (blanks.length) {
    // Blank values carry no PII: shown as JSON strings, so that a tab or a space can be told apart.
    const shown = blanks.slice(0, 5).map((r) => `${JSON.stringify(r.k)} x${r.n}`).join(', ');
    parts.push(`${blanks.reduce((n, r) => n + r.n, 0)}${rows.length === 11 && !dups.length ? '+' : ''} row(s) with an empty or whitespace-only ${mapping.source.key}: ${shown}${blanks.length > 5 ? ', ...' : ''}`);
  }
  if (dups.length) {
    // Masked: this message is kept in runs.error and becomes the daemon's run_failed event (logs, alerts).
    const shown = dups.slice(0, 5).map((r) => `'${maskPii(r.k)}' x${r.n}`).join(', ');
    parts.push(`duplicate ${mapping.source.key} values (NON_UNIQUE_PRIMARY_KEY): ${shown}${dups.length > 5 ? ', ...' : ''}`);
  }
  const k = mapping.source.key;
  throw new DataError('INVALID_KEYS', `mapping '${mapping.name}': the source has ${parts.join('; ')}. Nothing was sent.`, {
    hint: `source.key must identify one record; fix the model or choose another key column. The keys: SELECT ${k}, count(*) FROM <the source> GROUP BY 1 HAVING count(*) > 1 OR ${k} IS NULL OR btrim(${k}::text) = ''`,
  });
}

/**
 * What the database itself proves of a source's key: 'integral' (unique, NOT NULL, and of a type that is never
 * blank), 'text' (unique and NOT NULL: blanks are still looked for), 'text, never blank' (and a check constraint
 * rules out blanks: nothing is left to look for).
 */
export type KeyProof = 'text' | 'integral' | 'text, never blank';

/**
 * 'text' or 'integral' when the database itself rules out duplicate and NULL keys: the source is a table
 * (partitioned or not) or materialized view with a valid, immediate, non-partial unique index on the key
 * column alone, the column is NOT NULL (a primary key is both), and no inheritance child escapes the index.
 * Then the GROUP BY over the whole source (0.6 s at 1M rows) proves nothing new, and only a text key is left
 * to scan for blanks (an integer or uuid is never blank). Only for key types whose text form is as distinct
 * as the values themselves. null otherwise.
 */
export async function keyEnforced(client: pg.ClientBase, q: SourceQuery): Promise<KeyProof | null> {
  if (!q.relation) return null;
  const view = await currentModelKey(client, q.relation);
  if (view) return view;
  const { rows } = await client.query<{ text: boolean }>(
    `SELECT a.atttypid IN ('text'::regtype, 'varchar'::regtype) AS text
     FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
       -- a table's index does not cover its inheritance children (a partitioned table's does)
       JOIN pg_class c ON c.oid = i.indrelid AND (c.relkind = 'p' OR NOT c.relhassubclass)
     WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisvalid AND i.indimmediate AND i.indnkeyatts = 1
       AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = $2 AND a.attnotnull
       AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'uuid'::regtype)
     LIMIT 1`,
    [q.relation.name, q.relation.key]);
  return rows.length === 0 ? null : rows[0]!.text ? 'text' : 'integral';
}

/**
 * segsync's own current-segments view (src/models/materialize.ts markCurrentKey): its comment says it is one
 * snapshot of a history whose primary key is (snapshot_at, user_id), so user_id is unique and NOT NULL in it.
 * Trusted only while the view's definition still has the md5 recorded and the history still has that primary
 * key; the key column must be user_id. A KeyProof as keyEnforced ('text, never blank' when the history also has
 * the build's validated not-blank check), null when not proven.
 */
async function currentModelKey(client: pg.ClientBase, relation: { name: string; key: string }): Promise<KeyProof | null> {
  if (relation.key !== 'user_id') return null;
  const { rows } = await client.query<{ comment: string | null; md5: string }>(
    `SELECT obj_description(c.oid, 'pg_class') AS comment, md5(pg_get_viewdef(c.oid)) AS md5
     FROM pg_class c WHERE c.oid = to_regclass($1) AND c.relkind = 'v'`, [relation.name]);
  const m = rows[0]?.comment ? CURRENT_KEY_MARK.exec(rows[0].comment) : null;
  if (!m || m[2] !== rows[0]!.md5) return null;
  // With a text user_id, the build's not-blank check (materialize.ts HIST_KEY_CHECK) is looked for too: trusted
  // validated and exactly as the build makes it.
  const pk = await client.query<{ text: boolean; never_blank: boolean }>(
    `SELECT a.atttypid IN ('text'::regtype, 'varchar'::regtype) AS text,
            EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = i.indrelid AND k.conname = $2 AND k.contype = 'c' AND k.convalidated
                      AND pg_get_constraintdef(k.oid) = ANY($3::text[])) AS never_blank
     FROM pg_index i JOIN pg_attribute s ON s.attrelid = i.indrelid AND s.attnum = i.indkey[0]
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[1]
       JOIN pg_class c ON c.oid = i.indrelid AND (c.relkind = 'p' OR NOT c.relhassubclass)
     WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND i.indisvalid AND i.indimmediate AND i.indnkeyatts = 2
       AND s.attname = 'snapshot_at' AND a.attname = 'user_id'
       AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'uuid'::regtype)`, [m[1], HIST_KEY_CHECK, HIST_KEY_CHECK_DEFS]);
  const key = pk.rows[0];
  return !key ? null : !key.text ? 'integral' : key.never_blank ? 'text, never blank' : 'text';
}

/**
 * The relation a plan may read in one snapshot: the source model when it is a table or a view (of tables).
 * The plan then runs REPEATABLE READ and takes `LOCK TABLE ... IN ACCESS SHARE MODE` before its first query:
 * a models build that is truncating and reloading the model is waited for, and the snapshot, taken after the
 * lock, sees the build whole. (A REPEATABLE READ snapshot taken before a concurrent TRUNCATE commits sees an
 * empty table, and every record would be planned as removed.) Null for SQL sources, materialized views and
 * foreign tables, which LOCK TABLE cannot take: their plan reads statement by statement (READ COMMITTED),
 * each statement after its locks, on one connection.
 */
export async function snapshotRelation(db: Pick<pg.Pool, 'query'> | pg.ClientBase, q: SourceQuery): Promise<string | null> {
  if (!q.relation) return null;
  const { rows } = await db.query<{ kind: string | null }>('SELECT (SELECT relkind FROM pg_class WHERE oid = to_regclass($1))::text AS kind', [q.relation.name]);
  return ['r', 'p', 'v'].includes(rows[0]?.kind ?? '') ? q.relation.name : null;
}

/** The plan transaction's first statements (see snapshotRelation); call right after BEGIN. */
export async function enterPlanSnapshot(client: pg.ClientBase, relation: string | null): Promise<void> {
  if (relation === null) return;
  await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  await client.query(`LOCK TABLE ${relation} IN ACCESS SHARE MODE`);
}

/**
 * Runs `fn` with a second connection whose transaction reads `client`'s snapshot, so that the diff can be
 * planned in two halves at once: PostgreSQL runs an INSERT ... SELECT on one core, and the plan of a large sync
 * is all database work. Only for a plan in one snapshot (`relation` from snapshotRelation, entered with
 * enterPlanSnapshot) on a PostgreSQL server (`pool`; embedded PGlite is one session). The helper is taken
 * only when the pool can hand one out at once: a plan never waits for a connection, it runs whole on `client`
 * instead (`fn` gets null). The helper's transaction is committed after `fn` when `commit` is true (a run:
 * just before the caller's own commit) and rolled back otherwise (a dry run). Should the caller's commit not
 * happen (a failure, a kill), the run never reaches 'running', is marked failed or interrupted, and its
 * half-written intent is deleted (dropUnplannedItems); nothing of it is ever sent.
 */
export async function withPlanHelper<T>(pool: pg.Pool | null, relation: string | null, client: pg.ClientBase, commit: boolean, fn: (helper: pg.PoolClient | null) => Promise<T>): Promise<T> {
  // Asked for in the same tick as the check: nobody queued before us, and an idle client or room for a new one.
  const spare = pool !== null && relation !== null && pool.waitingCount === 0 && (pool.idleCount > 0 || pool.totalCount < (pool.options.max ?? 10));
  const helper = spare ? await pool.connect().catch(() => null) : null;
  if (!helper) return fn(null);
  let exported: string;
  try {
    exported = (await client.query<{ snapshot: string }>('SELECT pg_export_snapshot() AS snapshot')).rows[0]!.snapshot;
  } catch (err) {
    helper.release();
    throw err;
  }
  return inTransaction(helper, async () => {
    await helper.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(exported)}`);
    return fn(helper);
  }, { begin: 'BEGIN ISOLATION LEVEL REPEATABLE READ', commit });
}


/**
 * A SQL source is read once per plan: its rows go into a temporary table of the plan's transaction (dropped at
 * its end, commit or rollback), and the key check, the diff, the counts, the guardrails' figures and the
 * snapshot read that instead of running the SQL again each (a SQL source may be an expensive query, and reading
 * it once also gives every part of the plan the same rows). A model (a relation) is returned as is. The source
 * was already run whole in a READ ONLY transaction by checkSource, so one that writes never gets here.
 */
export async function readSourceOnce(client: pg.ClientBase, q: SourceQuery): Promise<SourceQuery> {
  if (q.relation) return q;
  await client.query('DROP TABLE IF EXISTS pg_temp.__segsync_source');
  await client.query(sourceStatement(`CREATE TEMP TABLE __segsync_source ON COMMIT DROP AS SELECT * FROM ${q.from}`, q.params));
  const t: SourceQuery = { from: '(SELECT * FROM pg_temp.__segsync_source) src', key: q.key, payload: q.payload, values: q.values, ...(q.columns ? { columns: q.columns } : {}), params: [], at: () => t };
  return t;
}
