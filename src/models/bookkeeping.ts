import { FINGERPRINT_TEMP, PROFILE_TEMP } from './fingerprint.ts';
import { monthCeilSql, quoteIdent, type Queryable } from './payments.ts';

/**
 * What segsync remembers between model builds, in the models schema next to the models (prefix _segsync_):
 *   _segsync_rfm_state         one row: the as-of instant, the model SQL hash and the payments relation of
 *                              the last build; any difference forces a full rebuild
 *   _segsync_rfm_fingerprints  per payment month: row count, amount sum, latest date, digest of ids, users and dates
 *   _segsync_rfm_snapshots     the snapshot instants in the history
 * All of it is written in the build's transaction, so it always describes the committed history.
 */

export interface BuildState {
  asOf: Date;
  modelHash: string;
  payments: string;
}

export function tables(schema: string) {
  const s = quoteIdent(schema);
  return {
    schema: s,
    hist: `${s}.rfm_segments_hist`,
    current: `${s}.rfm_current_segments`,
    state: `${s}._segsync_rfm_state`,
    fingerprints: `${s}._segsync_rfm_fingerprints`,
    snapshots: `${s}._segsync_rfm_snapshots`,
  };
}
export type ModelTables = ReturnType<typeof tables>;

export async function ensureBookkeeping(db: Queryable, t: ModelTables): Promise<void> {
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${t.schema}`);
  await db.query(`CREATE TABLE IF NOT EXISTS ${t.state} (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    as_of timestamptz NOT NULL,
    model_hash text NOT NULL,
    payments text NOT NULL,
    mode text NOT NULL,
    built_at timestamptz NOT NULL DEFAULT now())`);
  await db.query(`CREATE TABLE IF NOT EXISTS ${t.fingerprints} (
    month_key timestamptz PRIMARY KEY,
    row_count bigint NOT NULL,
    amount_sum numeric NOT NULL,
    max_date timestamptz NOT NULL,
    digest numeric NOT NULL)`);
  await db.query(`CREATE TABLE IF NOT EXISTS ${t.snapshots} (snapshot_at timestamptz PRIMARY KEY)`);
}

export async function readState(db: Queryable, t: ModelTables): Promise<BuildState | null> {
  const { rows } = await db.query<{ as_of: Date; model_hash: string; payments: string }>(`SELECT as_of, model_hash, payments FROM ${t.state}`);
  const r = rows[0];
  return r ? { asOf: r.as_of, modelHash: r.model_hash, payments: r.payments } : null;
}

export async function writeState(db: Queryable, t: ModelTables, state: BuildState, mode: string): Promise<void> {
  await db.query(
    `INSERT INTO ${t.state} (singleton, as_of, model_hash, payments, mode, built_at) VALUES (true, $1, $2, $3, $4, now())
     ON CONFLICT (singleton) DO UPDATE SET as_of = EXCLUDED.as_of, model_hash = EXCLUDED.model_hash,
       payments = EXCLUDED.payments, mode = EXCLUDED.mode, built_at = EXCLUDED.built_at`,
    [state.asOf, state.modelHash, state.payments, mode]);
}

/**
 * The earliest payment month whose rows differ from the last build's (added, removed or changed rows), or
 * null. Month keys are month starts: payments in (key - 1 month, key] are first seen by the snapshot at `key`.
 */
export async function earliestChangedMonth(db: Queryable, t: ModelTables): Promise<Date | null> {
  const { rows } = await db.query<{ month_key: Date | null }>(
    `SELECT MIN(COALESCE(now_.month_key, last_.month_key)) AS month_key
       FROM ${FINGERPRINT_TEMP} AS now_
       FULL JOIN ${t.fingerprints} AS last_ ON last_.month_key = now_.month_key
      WHERE now_.month_key IS NULL OR last_.month_key IS NULL
         OR (now_.row_count, now_.amount_sum, now_.max_date, now_.digest)
            IS DISTINCT FROM (last_.row_count, last_.amount_sum, last_.max_date, last_.digest)`);
  return rows[0]?.month_key ?? null;
}

export async function saveFingerprints(db: Queryable, t: ModelTables): Promise<void> {
  await db.query(`DELETE FROM ${t.fingerprints}`);
  await db.query(`INSERT INTO ${t.fingerprints} (month_key, row_count, amount_sum, max_date, digest)
    SELECT month_key, row_count, amount_sum, max_date, digest FROM ${FINGERPRINT_TEMP}`);
}

/** Snapshot instants at or after `from`, plus any that are no snapshot for `asOf` (an old as-of instant). */
export async function staleSnapshots(db: Queryable, t: ModelTables, from: Date, asOf: Date): Promise<Date[]> {
  const { rows } = await db.query<{ snapshot_at: Date }>(
    `SELECT snapshot_at FROM ${t.snapshots}
      WHERE snapshot_at >= $1 OR snapshot_at > $2
         OR (snapshot_at <> date_trunc('month', snapshot_at) AND snapshot_at <> $2)`, [from, asOf]);
  return rows.map((r) => r.snapshot_at);
}

/**
 * Records the snapshot instants the history now has from `from` on (all of them when from is null): the
 * month starts from the first one that sees a payment up to as-of, and as-of (computed, not counted, so it
 * costs nothing on a large history; the tests hold it equal to the history's own instants).
 */
export async function recordSnapshots(db: Queryable, t: ModelTables, removed: Date[], from: Date | null, asOf: Date): Promise<void> {
  if (from === null) await db.query(`DELETE FROM ${t.snapshots}`);
  else await db.query(`DELETE FROM ${t.snapshots} WHERE snapshot_at = ANY($1::timestamptz[])`, [removed]);
  await db.query(
    `WITH first AS (SELECT MIN(first_payment_as_of) AS at FROM ${PROFILE_TEMP})
     INSERT INTO ${t.snapshots} (snapshot_at)
     SELECT snapshot_at FROM (
       SELECT generate_series(${monthCeilSql('first.at')}, $2::timestamptz, interval '1 month') AS snapshot_at FROM first
       UNION
       SELECT $2::timestamptz FROM first WHERE first.at IS NOT NULL) AS instants
     WHERE snapshot_at >= $1::timestamptz
     ON CONFLICT (snapshot_at) DO NOTHING`,
    [from ?? '-infinity', asOf]);
}

/**
 * The snapshot an incremental build starts from: the last month start before `from`. Its payments did not
 * change (every change is at or after `from`), while an older as-of instant may predate a late payment.
 */
export async function carriedSnapshot(db: Queryable, t: ModelTables, from: Date): Promise<Date | null> {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT MAX(snapshot_at) AS at FROM ${t.snapshots} WHERE snapshot_at < $1 AND snapshot_at = date_trunc('month', snapshot_at)`, [from]);
  return rows[0]?.at ?? null;
}
