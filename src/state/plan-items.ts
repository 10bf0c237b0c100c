import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Mapping } from '../config/mapping.ts';
import { quoteLiteral } from '../db/sql.ts';
import { sourceStatement, type SourceQuery } from '../sync/source.ts';

export interface PlanCounts {
  create: number;
  update: number;
  remove: number;
  unchanged: number;
  /** Changed records not planned because they are dead (failed dead_after runs in a row with this payload). */
  dead: number;
  /** Records in the source. */
  source: number;
  /** Of the planned changes, records an earlier run left in doubt (sent, no answer): resent now. */
  in_doubt: number;
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
 * The diff, entirely in SQL: source rows hashed, joined to the delivered state of this mapping, and every
 * change written to run_items (the intent) before anything is sent. Unchanged = same hash as the last
 * confirmed delivery. A record whose delivery failed still differs from the delivered state, so it is
 * planned again until it is confirmed or dead.
 */
export async function planInto(client: pg.ClientBase, opts: PlanOptions): Promise<PlanCounts> {
  const { schema, mapping, source: q } = opts;
  // The source's own placeholders ($n of source.sql's \${VAR}) come after each statement's parameters.
  const q4 = q.at(4);
  const removals = mapping.mode === 'mirror' || mapping.on_removed !== 'keep';
  // One pass over the source, streamed through a hash join (no CTE is read twice, so nothing of 1M payloads
  // is materialised); the counts the INSERT cannot return are derived or read from the small dead set.
  // The diff is one big hash join; the default 4 MB of work_mem would spill it to disk in batches.
  const workMem = `SET LOCAL work_mem = ${quoteLiteral(process.env.SEGSYNC_PLAN_WORK_MEM ?? '64MB')}`;
  await client.query(workMem);
  // The values' row text renders floats exactly whatever the session asked for (it is hashed below).
  await client.query('SET LOCAL extra_float_digits = 3');
  type Inserted = { create: number; update: number; remove: number; in_doubt: number };
  const sig = await valuesSignature(client, q);
  const keyOrder = await keyOrderCollation(client, schema);
  // `half` 0 or 1 plans the keys whose hash falls in that half; null plans them all.
  //
  // Unchanged is decided without the payload where it can be: the state row keeps, beside the payload's md5,
  // a hash of the mapped values' row text (src/sync/source.ts `values`) prefixed by the signature of the
  // mapping's payload and the values' types, and followed by the payload hash it was recorded with. A record
  // whose values hash and payload hash still match that is unchanged: its jsonb is never built (building it is
  // most of the cost of a plan: about 4 s of 1M rows). Everything else (new, changed, in doubt, state rows
  // recorded before this, by another mapping version or repaired by reconcile since) has its payload built and
  // compared by md5 exactly as before, in the LATERAL below, evaluated only for the rows the join let through.
  const diff = (db: pg.ClientBase, half: 0 | 1 | null) => {
    const part = (key: string) => (half === null ? 'true' : `(hashtext(${key}) & 1) = ${half}`);
    return db.query<Inserted>(
      `WITH ins AS (
         INSERT INTO ${schema}.run_items (run_id, key, op, after, before, payload_hash, row_hash, destination_id, state_exists, resend, prior_failures)
         SELECT $2, coalesce(j.__segsync_key, j.__segsync_dkey),
                CASE WHEN j.__segsync_key IS NULL THEN 'remove' WHEN j.__segsync_dhash IS NULL THEN 'create' ELSE 'update' END,
                p.__segsync_payload,
                -- 'before' only for the changed rows: carrying every delivered payload through the join would
                -- make the hash table as large as the state.
                CASE WHEN j.__segsync_dkey IS NOT NULL THEN (SELECT b.payload FROM ${schema}.delivered b WHERE b.mapping = $1 AND b.key = j.__segsync_dkey) END,
                p.__segsync_hash, j.__segsync_rh, j.__segsync_did, j.__segsync_dkey IS NOT NULL, j.__segsync_doubt IS NOT NULL,
                CASE WHEN j.__segsync_failed IS NOT DISTINCT FROM p.__segsync_hash AND p.__segsync_hash IS NOT NULL THEN coalesce(j.__segsync_fails, 0) ELSE 0 END
         FROM (
           SELECT n.*, d.*
           -- OFFSET 0 keeps the subquery whole: the values hash is computed once a row.
           -- only the columns the payload reads travel through the join (its hash table is one side of it)
           FROM (SELECT ${q.columns?.length ? q.columns.map((c) => `src.${c}`).join(', ') : 'src.*'}, ${q.key} AS __segsync_key, ${quoteLiteral(sig)} || hashtextextended(${q.values}, 0)::text AS __segsync_rh FROM ${q4.from} WHERE ${part(q.key)} OFFSET 0) n
           FULL JOIN (SELECT key AS __segsync_dkey, payload_hash AS __segsync_dhash, row_hash AS __segsync_drh, destination_id AS __segsync_did,
                             dead_at AS __segsync_dead, failed_hash AS __segsync_failed, fail_count AS __segsync_fails, in_doubt_run AS __segsync_doubt
                      FROM ${schema}.delivered WHERE mapping = $1 AND ${part('key')}) d
             ON d.__segsync_dkey = n.__segsync_key
           -- a record left in doubt is resent even when the model is back at the confirmed values: the
           -- destination may hold what the unanswered request carried
           WHERE (CASE WHEN n.__segsync_key IS NULL THEN (d.__segsync_dhash IS NOT NULL OR d.__segsync_doubt IS NOT NULL) AND $3
                       ELSE d.__segsync_dhash IS NULL OR d.__segsync_doubt IS NOT NULL OR d.__segsync_drh IS DISTINCT FROM n.__segsync_rh || d.__segsync_dhash END)
             AND ($4 = false OR coalesce(d.__segsync_fails, 0) > 0)
           OFFSET 0
         ) j
         -- the payload, built only here: for the rows the values hash did not settle
         LEFT JOIN LATERAL (SELECT x.v AS __segsync_payload, md5(x.v::text) AS __segsync_hash
                            FROM (SELECT ${q.payload} AS v WHERE j.__segsync_key IS NOT NULL OFFSET 0) x) p ON true
         WHERE (j.__segsync_key IS NULL OR j.__segsync_doubt IS NOT NULL OR j.__segsync_dhash IS DISTINCT FROM p.__segsync_hash)
           AND NOT (j.__segsync_dead IS NOT NULL AND j.__segsync_failed IS NOT DISTINCT FROM p.__segsync_hash)
           -- erasure (segsync forget, src/state/erasure.ts): a suppressed person is never planned again, sent or removed
           AND NOT EXISTS (SELECT 1 FROM ${schema}.suppressions s WHERE s.key = coalesce(j.__segsync_key, j.__segsync_dkey))
         -- The intent is written in key order: the delivery reads it back and copies it into the state by key
         -- range, batch after batch. In the join's order (a first sync emits the hash table's buckets) every
         -- batch is scattered over the whole table, and both passes cost about 3x as much (bench:sync: 6 s of
         -- 1M); the sort of the changed rows costs far less than that. Sorted under "C" where that is the
         -- key index's own order (keyOrderCollation): the same order at a third of the comparisons' cost.
         ORDER BY coalesce(j.__segsync_key, j.__segsync_dkey)${keyOrder}
         RETURNING op, resend
       )
       SELECT count(*) FILTER (WHERE op = 'create')::int AS "create", count(*) FILTER (WHERE op = 'update')::int AS "update",
              count(*) FILTER (WHERE op = 'remove')::int AS "remove", count(*) FILTER (WHERE resend)::int AS in_doubt
       FROM ins`,
      [mapping.name, opts.runId, removals, opts.failedOnly === true, ...q.params],
    ).then((r) => r.rows[0]!);
  };
  let ins: Inserted;
  if (!opts.helper) {
    ins = await diff(client, null);
  } else {
    await opts.helper.query(workMem);
    await opts.helper.query('SET LOCAL extra_float_digits = 3');
    const [a, b] = await Promise.all([diff(client, 0), diff(opts.helper, 1)]);
    ins = { create: a.create + b.create, update: a.update + b.update, remove: a.remove + b.remove, in_doubt: a.in_doubt + b.in_doubt };
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

/**
 * ` COLLATE "C"` when the intent's key index (run_items.key) orders text as "C" does, else ''. PostgreSQL
 * compares text byte by byte, with abbreviated keys, only under a collation whose locale is "C" or "POSIX"; a
 * database made with libc's C.UTF-8 (the usual default of a container image) orders UTF-8 text the same way,
 * by code point, yet every comparison goes through strcoll: each half of the 1M plan sorted its 500k rows in
 * 2.3 s under C.UTF-8 and 1.0 s under "C" (docs/benchmarks.md, 2026-12-04). Any other collation (en_US, ICU)
 * keeps the column's own order, which the delivery's key ranges follow: "C" would still be correct there, but
 * would scatter every batch. A column collated "C" or "POSIX" is compared as bytes already and needs nothing.
 */
export async function keyOrderCollation(db: Pick<pg.ClientBase, 'query'>, schema: string): Promise<string> {
  // The column's collation, or the database's where the column has the default ('d').
  const { rows } = await db.query<{ name: string; provider: string | null; lc: string | null }>(
    `SELECT c.collname AS name, CASE c.collprovider WHEN 'd' THEN to_jsonb(d)->>'datlocprovider' ELSE c.collprovider::text END AS provider,
            coalesce(c.collcollate, d.datcollate) AS lc
     FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
     CROSS JOIN (SELECT * FROM pg_database WHERE datname = current_database()) d
     WHERE a.attrelid = to_regclass($1) AND a.attname = 'key'`, [`${schema}.run_items`]);
  const r = rows[0];
  if (!r || r.name === 'C' || r.name === 'POSIX') return '';
  return (r.provider ?? 'c') === 'c' && r.lc != null && C_ORDER.test(r.lc) ? ' COLLATE "C"' : '';
}
/** libc locales whose text order is byte order: C and POSIX (already compared as bytes) and C.UTF-8. */
const C_ORDER = /^(C|POSIX|C\.(UTF-?8|utf-?8))$/;

/**
 * What a values hash is only comparable under: the payload expression (field names, transforms) and the types
 * of the mapped values, read from the source's row description (LIMIT 0 reads no row). 12 hex digits and ':'.
 */
export async function valuesSignature(client: pg.ClientBase, q: SourceQuery): Promise<string> {
  const { fields } = await client.query(sourceStatement(`SELECT ${q.values.replace(/^ROW\((.*)\)::text$/s, '$1')} FROM ${q.from} LIMIT 0`, q.params));
  const h = createHash('sha256').update(q.payload).update('\0').update(fields.map((f) => f.dataTypeID).join(',')).digest('hex');
  return `${h.slice(0, 12)}:`;
}

/**
 * State rows whose values hash is missing or stale (recorded before values hashes existed, or under another
 * payload signature) while their payload is unchanged: their values hash is written, so that the next plans
 * skip their payload. Only the values hash changes; the delivered payload and its hash stay as confirmed.
 * Called by a run's plan (not a dry run) in the plan's snapshot; returns the rows updated.
 */
export async function refreshValuesHashes(client: pg.ClientBase, o: { schema: string; mapping: string; source: SourceQuery }): Promise<number> {
  const { schema, source: q } = o;
  const sig = await valuesSignature(client, q);
  const stale = await client.query(
    `SELECT 1 FROM ${schema}.delivered WHERE mapping = $1 AND payload_hash IS NOT NULL AND in_doubt_run IS NULL
       AND (row_hash IS NULL OR NOT starts_with(row_hash, $2)) LIMIT 1`, [o.mapping, sig]);
  if (!stale.rowCount) return 0;
  const q2 = q.at(2);
  const { rowCount } = await client.query(sourceStatement(
    `UPDATE ${schema}.delivered d SET row_hash = n.rh || d.payload_hash
     FROM (SELECT ${q.key} AS key, $2 || hashtextextended(${q.values}, 0)::text AS rh, md5((${q.payload})::text) AS hash FROM ${q2.from}) n
     WHERE d.mapping = $1 AND d.key = n.key AND d.payload_hash = n.hash AND d.in_doubt_run IS NULL
       AND d.row_hash IS DISTINCT FROM n.rh || d.payload_hash`, [o.mapping, sig, ...q.params]));
  return rowCount ?? 0;
}
