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
  type Inserted = { create: number; update: number; remove: number; in_doubt: number };
  // `half` 0 or 1 plans the keys whose hash falls in that half; null plans them all.
  const diff = (db: pg.ClientBase, half: 0 | 1 | null) => {
    const part = (key: string) => (half === null ? 'true' : `(hashtext(${key}) & 1) = ${half}`);
    return db.query<Inserted>(
      `WITH ins AS (
         INSERT INTO ${schema}.run_items (run_id, key, op, after, before, payload_hash, destination_id, state_exists, resend, prior_failures)
         SELECT $2, coalesce(n.key, d.key),
                CASE WHEN n.key IS NULL THEN 'remove' WHEN d.payload_hash IS NULL THEN 'create' ELSE 'update' END,
                n.payload,
                -- 'before' only for the changed rows: carrying every delivered payload through the join would
                -- make the hash table as large as the state.
                CASE WHEN d.key IS NOT NULL THEN (SELECT b.payload FROM ${schema}.delivered b WHERE b.mapping = $1 AND b.key = d.key) END,
                n.hash, d.destination_id, d.key IS NOT NULL, d.in_doubt_run IS NOT NULL,
                CASE WHEN d.failed_hash IS NOT DISTINCT FROM n.hash AND n.hash IS NOT NULL THEN coalesce(d.fail_count, 0) ELSE 0 END
         -- OFFSET 0 keeps the subquery whole: flattened, PostgreSQL would build each payload and its md5 once per
         -- reference (the insert and both filters), three times a row.
         FROM (SELECT key, payload, md5(payload::text) AS hash FROM (SELECT ${q.key} AS key, ${q.payload} AS payload FROM ${q4.from} WHERE ${part(q.key)}) x OFFSET 0) n
         FULL JOIN (SELECT key, payload_hash, destination_id, dead_at, failed_hash, fail_count, in_doubt_run FROM ${schema}.delivered WHERE mapping = $1 AND ${part('key')}) d
           ON d.key = n.key
         -- a record left in doubt is resent even when the model is back at the confirmed values: the
         -- destination may hold what the unanswered request carried
         WHERE (CASE WHEN n.key IS NULL THEN (d.payload_hash IS NOT NULL OR d.in_doubt_run IS NOT NULL) AND $3 ELSE d.payload_hash IS DISTINCT FROM n.hash OR d.in_doubt_run IS NOT NULL END)
           AND NOT (d.dead_at IS NOT NULL AND d.failed_hash IS NOT DISTINCT FROM n.hash)
           AND ($4 = false OR coalesce(d.fail_count, 0) > 0)
           -- erasure (segsync forget, src/state/erasure.ts): a suppressed person is never planned again, sent or removed
           AND NOT EXISTS (SELECT 1 FROM ${schema}.suppressions s WHERE s.key = coalesce(n.key, d.key))
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

