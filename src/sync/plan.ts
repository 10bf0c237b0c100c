import type pg from 'pg';
import type { Mapping } from '../config/mapping.ts';
import { inTransaction } from '../db/transaction.ts';
import { DataError } from '../errors.ts';
import { maskPii } from '../log.ts';
import { sourceStatement, type SourceQuery } from './source.ts';
import { quoteLiteral } from '../db/sql.ts';

export interface PlanCounts {
  create: number;
  update: number;
  remove: number;
  unchanged: number;
  /** Changed records not planned because they are dead (failed dead_after runs in a row with this payload). */
  dead: number;
  /** Records in the source. */
  source: number;
}

/** The whitespace a key may not consist of alone (ASCII; PostgreSQL's btrim trims only spaces by default). */
const BLANK = `E' \\t\\n\\r\\f\\v'`;

/**
 * Duplicate, NULL, empty or whitespace-only keys would make "the record" ambiguous or address nothing: the plan
 * fails, with examples, and nothing is sent.
 */
export async function checkKeys(client: pg.ClientBase, mapping: Mapping, q: SourceQuery): Promise<void> {
  const enforced = await keyEnforced(client, q);
  // A unique NOT NULL text key can still be '' or '  ': only that is left to look for.
  if (enforced === 'integral') return;
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
 * 'text' or 'integral' when the database itself rules out duplicate and NULL keys: the source is a table
 * (partitioned or not) or materialized view with a valid, immediate, non-partial unique index on the key
 * column alone, the column is NOT NULL (a primary key is both), and no inheritance child escapes the index.
 * Then the GROUP BY over the whole source (0.6 s at 1M rows) proves nothing new, and only a text key is left
 * to scan for blanks (an integer or uuid is never blank). Only for key types whose text form is as distinct
 * as the values themselves. null otherwise.
 */
async function keyEnforced(client: pg.ClientBase, q: SourceQuery): Promise<'text' | 'integral' | null> {
  if (!q.relation) return null;
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
 * Deletes the planned items of this mapping's runs that never reached 'running' (no planned_at) and have
 * ended: the half of a two-connection plan whose run failed or was killed before its commit. Never sent, so
 * nothing refers to them. Call with the mapping's run lock held.
 */
export async function dropUnplannedItems(db: Pick<pg.Pool, 'query'>, schema: string, mapping: string): Promise<void> {
  await db.query(
    `DELETE FROM ${schema}.run_items WHERE run_id IN (
       SELECT id FROM ${schema}.runs WHERE mapping = $1 AND planned_at IS NULL AND status IN ('failed', 'interrupted'))`,
    [mapping]);
}

export interface PlanOptions {
  schema: string;
  mapping: Mapping;
  runId: number;
  source: SourceQuery;
  /** Only keys whose last delivery failed (segsync retry). */
  failedOnly?: boolean;
  /**
   * A second connection in the caller's snapshot (see withPlanHelper): the diff is split in two halves by key
   * hash and the second half is planned there, at the same time.
   */
  helper?: pg.ClientBase | null;
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
 * The diff, entirely in SQL: source rows hashed, joined to the delivered state of this mapping, and every
 * change written to run_items (the intent) before anything is sent. Unchanged = same hash as the last
 * confirmed delivery. A record whose delivery failed still differs from the delivered state, so it is
 * planned again until it is confirmed or dead.
 */
export async function planInto(client: pg.ClientBase, opts: PlanOptions): Promise<PlanCounts> {
  const { schema, mapping, source: q } = opts;
  const removals = mapping.mode === 'mirror' || mapping.on_removed !== 'keep';
  // One pass over the source, streamed through a hash join (no CTE is read twice, so nothing of 1M payloads
  // is materialised); the counts the INSERT cannot return are derived or read from the small dead set.
  // The diff is one big hash join; the default 4 MB of work_mem would spill it to disk in batches.
  const workMem = `SET LOCAL work_mem = ${quoteLiteral(process.env.SEGSYNC_PLAN_WORK_MEM ?? '64MB')}`;
  await client.query(workMem);
  type Inserted = { create: number; update: number; remove: number };
  // `half` 0 or 1 plans the keys whose hash falls in that half; null plans them all.
  const diff = (db: pg.ClientBase, half: 0 | 1 | null) => {
    const part = (key: string) => (half === null ? 'true' : `(hashtext(${key}) & 1) = ${half}`);
    return db.query<Inserted>(
      `WITH ins AS (
         INSERT INTO ${schema}.run_items (run_id, key, op, after, before, payload_hash, destination_id, state_exists)
         SELECT $2, coalesce(n.key, d.key),
                CASE WHEN n.key IS NULL THEN 'remove' WHEN d.payload_hash IS NULL THEN 'create' ELSE 'update' END,
                n.payload,
                -- 'before' only for the changed rows: carrying every delivered payload through the join would
                -- make the hash table as large as the state.
                CASE WHEN d.key IS NOT NULL THEN (SELECT b.payload FROM ${schema}.delivered b WHERE b.mapping = $1 AND b.key = d.key) END,
                n.hash, d.destination_id, d.key IS NOT NULL
         -- OFFSET 0 keeps the subquery whole: flattened, PostgreSQL would build each payload and its md5 once per
         -- reference (the insert and both filters), three times a row.
         FROM (SELECT key, payload, md5(payload::text) AS hash FROM (SELECT ${q.key} AS key, ${q.payload} AS payload FROM ${q.at(4).from} WHERE ${part(q.key)}) x OFFSET 0) n
         FULL JOIN (SELECT key, payload_hash, destination_id, dead_at, failed_hash, fail_count FROM ${schema}.delivered WHERE mapping = $1 AND ${part('key')}) d
           ON d.key = n.key
         WHERE (CASE WHEN n.key IS NULL THEN d.payload_hash IS NOT NULL AND $3 ELSE d.payload_hash IS DISTINCT FROM n.hash END)
           AND NOT (d.dead_at IS NOT NULL AND d.failed_hash IS NOT DISTINCT FROM n.hash)
           AND ($4 = false OR coalesce(d.fail_count, 0) > 0)
         RETURNING op
       )
       SELECT count(*) FILTER (WHERE op = 'create')::int AS "create", count(*) FILTER (WHERE op = 'update')::int AS "update",
              count(*) FILTER (WHERE op = 'remove')::int AS "remove"
       FROM ins`,
      [mapping.name, opts.runId, removals, opts.failedOnly === true, ...q.params],
    ).then((r) => r.rows[0]!);
  };
  let ins: Inserted;
  if (!opts.helper) {
    ins = await diff(client, null);
  } else {
    await opts.helper.query(workMem);
    const [a, b] = await Promise.all([diff(client, 0), diff(opts.helper, 1)]);
    ins = { create: a.create + b.create, update: a.update + b.update, remove: a.remove + b.remove };
  }
  const source = (await client.query<{ n: number }>(sourceStatement(`SELECT count(*)::int AS n FROM ${q.from}`, q.params))).rows[0]!.n;
  // Dead records are rare: look for them only when the mapping has any, and hash only the joined rows
  // (the payload is built in the join filter, not in the scan).
  const anyDead = (await client.query(`SELECT 1 FROM ${schema}.delivered WHERE mapping = $1 AND dead_at IS NOT NULL LIMIT 1`, [mapping.name])).rowCount! > 0;
  const dead = !anyDead ? 0 : (await client.query<{ n: number }>(
    `SELECT count(*)::int AS n
     FROM (SELECT key AS __segsync_key, failed_hash AS __segsync_failed, payload_hash AS __segsync_hash FROM ${schema}.delivered
           WHERE mapping = $1 AND dead_at IS NOT NULL) d
     JOIN ${q.at(1).from} ON ${q.key} = d.__segsync_key
     WHERE md5((${q.payload})::text) = d.__segsync_failed AND d.__segsync_hash IS DISTINCT FROM d.__segsync_failed`,
    [mapping.name, ...q.params])).rows[0]!.n;
  // In a retry (failedOnly) "unchanged" counts every source record that was not retried.
  return { ...ins, dead, source, unchanged: source - ins.create - ins.update - dead };
}

export interface PlanDetail {
  samples: Array<{ key: string; op: string; before: unknown; after: unknown }>;
  /** "Champions -> At Risk: 120", on the field mapped from the segment column. */
  transitions: Array<{ from: string; to: string; count: number }>;
  transitionField: string | null;
}

/** Which destination field carries the segment: the one mapped from rfm_segment, else the first field. */
export function segmentField(mapping: Mapping): string | null {
  return (mapping.fields.find((f) => f.from === 'rfm_segment') ?? mapping.fields[0])?.to ?? null;
}

/** The dry run's samples and transition matrix; with a plan helper, both halves' items are read and merged. */
export async function planDetail(client: pg.ClientBase, schema: string, mapping: Mapping, runId: number, samplesPerOp = 3, helper: pg.ClientBase | null = null): Promise<PlanDetail> {
  const field = segmentField(mapping);
  const halves = await Promise.all([client, ...(helper ? [helper] : [])].map(async (db) => ({
    samples: (await db.query<PlanDetail['samples'][number]>(
      `SELECT key, op, before, after FROM (
         SELECT *, row_number() OVER (PARTITION BY op ORDER BY key) AS rn FROM ${schema}.run_items WHERE run_id = $1
       ) x WHERE rn <= $2 ORDER BY op, key`,
      [runId, samplesPerOp])).rows,
    // Every pair of a half (a segment model has ~150 at most), so that the merged counts are whole.
    transitions: field === null ? [] : await segmentTransitions(db, schema, runId, field, helper ? 10_000 : 100),
  })));
  if (halves.length === 1) return { ...halves[0]!, transitionField: field };
  const byOrder = (a: { op: string; key: string }, b: { op: string; key: string }) => (a.op < b.op ? -1 : a.op > b.op ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const taken = new Map<string, number>();
  const samples = halves.flatMap((h) => h.samples).sort(byOrder).filter((r) => {
    const n = (taken.get(r.op) ?? 0) + 1;
    taken.set(r.op, n);
    return n <= samplesPerOp;
  });
  const sums = new Map<string, { from: string; to: string; count: number }>();
  for (const t of halves.flatMap((h) => h.transitions)) {
    const k = `${t.from}\u0000${t.to}`;
    const seen = sums.get(k);
    if (seen) seen.count += t.count;
    else sums.set(k, { ...t });
  }
  const transitions = [...sums.values()]
    .sort((a, b) => b.count - a.count || (a.from < b.from ? -1 : a.from > b.from ? 1 : a.to < b.to ? -1 : a.to > b.to ? 1 : 0))
    .slice(0, 100);
  return { samples, transitions, transitionField: field };
}

/** How the run moves records between segments: "(new) -> Champions: 40", "At Risk -> (removed): 2". */
export async function segmentTransitions(db: Pick<pg.Pool, 'query'> | pg.ClientBase, schema: string, runId: number, field: string, limit = 100): Promise<Array<{ from: string; to: string; count: number }>> {
  const { rows } = await db.query<{ from: string; to: string; count: number }>(
    `SELECT coalesce(before ->> $2, '(new)') AS "from", coalesce(after ->> $2, '(removed)') AS "to", count(*)::int AS count
     FROM ${schema}.run_items WHERE run_id = $1 AND (before ->> $2) IS DISTINCT FROM (after ->> $2)
     GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT $3`,
    [runId, field, limit],
  );
  return rows;
}
