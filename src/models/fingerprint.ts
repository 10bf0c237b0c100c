import pg from 'pg';
import { DataError } from '../errors.ts';
import type { Queryable } from './payments.ts';

/**
 * One look at the payments per build: a fingerprint per payment month (row count, amount sum, latest date
 * and an order-independent digest of ids, users and dates) into a temporary table, compared later with the
 * last build's (bookkeeping.ts) to find the earliest month whose payments changed; plus the data checks.
 *
 * Grouping every payment by month is the costly part of a refresh, and months before the last build's
 * as-of instant rarely change. So when a previous build exists, the payments up to the month start before
 * its as-of instant ("settled") are first summed as one group (a plain aggregate, which Postgres can run in
 * parallel); if that equals the sum of their stored fingerprints, their stored fingerprints are reused and
 * only the later payments are grouped. Otherwise every month is fingerprinted again.
 */

export const FINGERPRINT_TEMP = 'pg_temp._segsync_rfm_fingerprints_now';
export const PROFILE_TEMP = 'pg_temp._segsync_rfm_profile_now';

export interface PaymentsProfile {
  rows: number;
  /** Earliest payment at or before the as-of instant; null when there is none. */
  firstPaymentAsOf: Date | null;
  firstPayment: Date | null;
  nonPositive: number;
  /** Whether the stored fingerprints of the settled months were reused. */
  reusedSettled: boolean;
}

const FINGERPRINT = ['month_key', 'row_count', 'amount_sum', 'max_date', 'digest'] as const;
const PROFILE = ['row_count', 'null_payment_date', 'null_user_id', 'null_payment_id', 'null_payment_amount', 'non_positive', 'first_payment', 'first_payment_as_of'] as const;
const TIMESTAMPS = new Set(['month_key', 'max_date', 'first_payment', 'first_payment_as_of']);

function payments(relation: string): string {
  return `(SELECT CAST(user_id AS text) AS user_id, CAST(payment_id AS text) AS payment_id,
                  CAST(payment_date AS timestamptz) AS d, CAST(payment_amount AS numeric) AS amount
             FROM ${relation}) AS p`;
}

function aggregates(asOf: Date): string {
  return `COUNT(*)::text AS row_count,
          SUM(amount)::text AS amount_sum,
          MAX(d)::text AS max_date,
          SUM(hashtextextended(payment_id, hashtext(user_id)) # CAST(date_part('epoch', d) * 1000000 AS bigint))::text AS digest,
          MIN(d)::text AS first_payment,
          (MIN(d) FILTER (WHERE d <= ${pg.escapeLiteral(asOf.toISOString())}::timestamptz))::text AS first_payment_as_of,
          (COUNT(*) FILTER (WHERE amount <= 0))::text AS non_positive,
          (COUNT(*) - COUNT(user_id))::text AS null_user_id,
          (COUNT(*) - COUNT(payment_id))::text AS null_payment_id,
          (COUNT(*) - COUNT(amount))::text AS null_payment_amount`;
}

type Row = Record<string, string | null>;

async function insertRows(db: Queryable, table: string, cols: readonly string[], rows: Row[]): Promise<void> {
  if (!rows.length) return;
  await db.query(
    `INSERT INTO ${table} (${cols.join(', ')})
     SELECT ${cols.map((c) => `${c}::${TIMESTAMPS.has(c) ? 'timestamptz' : 'numeric'}`).join(', ')}
       FROM unnest(${cols.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS m(${cols.join(', ')})`,
    cols.map((c) => rows.map((r) => r[c] ?? null)));
}

/** Month fingerprints (and profile parts) of the payments matching `where`, grouped by month key. */
async function byMonth(db: Queryable, relation: string, asOf: Date, where: string): Promise<Row[]> {
  const { rows } = await db.query<Row>(
    `SELECT month_key::text AS month_key,
            CASE WHEN month_key IS NULL THEN row_count ELSE '0' END AS null_payment_date,
            row_count, amount_sum, max_date, digest, first_payment, first_payment_as_of,
            non_positive, null_user_id, null_payment_id, null_payment_amount
       FROM (SELECT -- the month start at or after d: monthCeilSql() with one date_trunc per row
                    date_trunc('month', d - interval '1 microsecond') + interval '1 month' AS month_key,
                    ${aggregates(asOf)}
               FROM ${payments(relation)}
              WHERE ${where}
              GROUP BY 1) AS months`);
  return rows;
}

export async function profilePayments(db: Queryable, relation: { sql: string; display: string }, asOf: Date, stored: { table: string; settledUntil: Date | null }): Promise<PaymentsProfile> {
  await db.query(`DROP TABLE IF EXISTS ${FINGERPRINT_TEMP}`);
  await db.query(`DROP TABLE IF EXISTS ${PROFILE_TEMP}`);
  await db.query(`CREATE TEMPORARY TABLE _segsync_rfm_fingerprints_now (
      month_key timestamptz, row_count bigint, amount_sum numeric, max_date timestamptz, digest numeric) ON COMMIT DROP`);
  await db.query(`CREATE TEMPORARY TABLE _segsync_rfm_profile_now (
      row_count bigint, null_payment_date bigint, null_user_id bigint, null_payment_id bigint, null_payment_amount bigint,
      non_positive bigint, first_payment timestamptz, first_payment_as_of timestamptz) ON COMMIT DROP`);

  let reusedSettled = false;
  const settled = stored.settledUntil;
  if (settled) {
    const bound = `${pg.escapeLiteral(settled.toISOString())}::timestamptz`;
    const now = await db.query<Row>(`SELECT ${aggregates(asOf)} FROM ${payments(relation.sql)} WHERE d <= ${bound}`);
    const before = await db.query<Row>(
      `SELECT COALESCE(SUM(row_count), 0)::text AS row_count, SUM(amount_sum)::text AS amount_sum,
              MAX(max_date)::text AS max_date, SUM(digest)::text AS digest
         FROM ${stored.table} WHERE month_key <= ${bound}`);
    const n = now.rows[0] ?? {};
    const b = before.rows[0] ?? {};
    if (['row_count', 'amount_sum', 'max_date', 'digest'].every((k) => n[k] === b[k])) {
      reusedSettled = true;
      await db.query(`INSERT INTO ${FINGERPRINT_TEMP} (${FINGERPRINT.join(', ')})
        SELECT ${FINGERPRINT.join(', ')} FROM ${stored.table} WHERE month_key <= ${bound}`);
      const recent = await byMonth(db, relation.sql, asOf, `d > ${bound} OR d IS NULL`);
      await insertRows(db, FINGERPRINT_TEMP, FINGERPRINT, recent.filter((r) => r.month_key !== null));
      await insertRows(db, PROFILE_TEMP, PROFILE, [{ ...n, null_payment_date: '0' }, ...recent]);
    }
  }
  if (!reusedSettled) {
    const all = await byMonth(db, relation.sql, asOf, 'true');
    await insertRows(db, FINGERPRINT_TEMP, FINGERPRINT, all.filter((r) => r.month_key !== null));
    await insertRows(db, PROFILE_TEMP, PROFILE, all);
  }

  const { rows } = await db.query<Record<string, string | Date | null>>(
    `SELECT COALESCE(SUM(row_count), 0)::text AS rows,
            COALESCE(SUM(null_payment_date), 0)::text AS null_payment_date,
            COALESCE(SUM(null_user_id), 0)::text AS null_user_id,
            COALESCE(SUM(null_payment_id), 0)::text AS null_payment_id,
            COALESCE(SUM(null_payment_amount), 0)::text AS null_payment_amount,
            COALESCE(SUM(non_positive), 0)::text AS non_positive,
            MIN(first_payment) AS first_payment,
            MIN(first_payment_as_of) AS first_payment_as_of
       FROM ${PROFILE_TEMP}`);
  const r = rows[0] ?? {};
  for (const column of ['user_id', 'payment_id', 'payment_date', 'payment_amount']) {
    const count = Number(r[`null_${column}`] ?? 0);
    if (count > 0) {
      throw new DataError('PAYMENTS_NULL', `payments relation ${relation.display}: ${count} row(s) with NULL ${column}; the models cannot place them`, {
        hint: `fix or delete them: SELECT * FROM ${relation.display} WHERE ${column} IS NULL`,
      });
    }
  }
  return {
    rows: Number(r.rows ?? 0),
    firstPayment: (r.first_payment as Date | null) ?? null,
    firstPaymentAsOf: (r.first_payment_as_of as Date | null) ?? null,
    nonPositive: Number(r.non_positive ?? 0),
    reusedSettled,
  };
}
