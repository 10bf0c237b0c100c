import pg from 'pg';
import { DataError } from '../errors.ts';

/** Anything that runs a query: a pool or the one client a build holds for its transaction. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

export function quoteIdent(name: string): string {
  return pg.escapeIdentifier(name);
}

/** `schema.table` (or a bare `table`, which lives in `defaultSchema`), quoted part by part. */
export function qualify(relation: string, defaultSchema: string): { sql: string; display: string } {
  const parts = relation.split('.');
  const [schema, table] = parts.length === 2 ? [parts[0] ?? '', parts[1] ?? ''] : [defaultSchema, relation];
  if (parts.length > 2 || !schema || !table) {
    throw new DataError('PAYMENTS_RELATION_INVALID', `payments relation "${relation}" is not a table name or schema.table`);
  }
  return { sql: `${quoteIdent(schema)}.${quoteIdent(table)}`, display: `${schema}.${table}` };
}

/** The payments contract: column -> the type categories that can be cast the way the model needs. */
const NEEDED: ReadonlyArray<{ column: string; accepts: (type: string, category: string) => boolean; want: string }> = [
  { column: 'user_id', accepts: () => true, want: 'any type castable to text' },
  { column: 'payment_id', accepts: () => true, want: 'any type castable to text' },
  { column: 'payment_date', accepts: (t) => ['timestamp with time zone', 'timestamp without time zone', 'date'].includes(t), want: 'timestamptz, timestamp or date' },
  { column: 'payment_amount', accepts: (_t, c) => c === 'N', want: 'a numeric type' },
];

/**
 * Checks that the payments relation exists and has the four columns the models read, with usable types.
 * The error names the relation and the column, so a wrong `models.payments` setting or a loader that wrote
 * another shape is found before any SQL runs.
 */
export async function checkPaymentsRelation(db: Queryable, relation: { sql: string; display: string }): Promise<{ paymentIdUnique: boolean }> {
  const found = await db.query<{ oid: string | null }>('SELECT to_regclass($1)::oid::text AS oid', [relation.sql]);
  const oid = found.rows[0]?.oid;
  if (!oid) {
    throw new DataError('PAYMENTS_MISSING', `payments relation ${relation.display} does not exist`, {
      hint: 'load payments first (segsync load payments FILE.csv) or point models.payments in config/segsync.yaml at your payments table',
    });
  }
  const cols = await db.query<{ name: string; type: string; category: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type, t.typcategory AS category
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped`, [oid]);
  const byName = new Map(cols.rows.map((c) => [c.name, c]));
  for (const need of NEEDED) {
    const col = byName.get(need.column);
    if (!col) {
      throw new DataError('PAYMENTS_COLUMN_MISSING', `payments relation ${relation.display} has no column ${need.column}`, {
        hint: `the models read user_id, payment_id, payment_date and payment_amount; it has: ${[...byName.keys()].join(', ') || '(no columns)'}`,
      });
    }
    if (!need.accepts(col.type, col.category)) {
      throw new DataError('PAYMENTS_COLUMN_TYPE', `payments relation ${relation.display}: column ${need.column} is ${col.type}, the models need ${need.want}`);
    }
  }
  // A unique index on payment_id alone (the loader's primary key) means a payment_id never repeats, so an
  // incremental build need not look for earlier rows of the new month's payments.
  const unique = await db.query<{ n: number }>(
    `SELECT COUNT(*)::int AS n FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
        AND i.indnkeyatts = 1 AND i.indexprs IS NULL AND a.attname = 'payment_id'`, [oid]);
  return { paymentIdUnique: (unique.rows[0]?.n ?? 0) > 0 };
}

/** Expression for the first month start at or after `expr` (the month-start snapshot that first sees it). */
export function monthCeilSql(expr: string): string {
  return `CASE WHEN ${expr} = date_trunc('month', ${expr}) THEN ${expr} ELSE date_trunc('month', ${expr}) + interval '1 month' END`;
}

/** Temporary table of this build's payment fingerprints, dropped at commit. */
export const FINGERPRINT_TEMP = 'pg_temp._segsync_rfm_fingerprints_now';

export interface PaymentsProfile {
  rows: number;
  /** Earliest payment at or before the as-of instant; null when there is none. */
  firstPaymentAsOf: Date | null;
  firstPayment: Date | null;
  nonPositive: number;
}

/**
 * One pass over the payments: a fingerprint per month (row count, amount sum, latest date and an
 * order-independent digest of ids, users and dates) into a temporary table, plus the data checks. The fingerprints are
 * compared with the last build's to find the earliest month whose payments changed.
 */
export async function profilePayments(db: Queryable, relation: { sql: string; display: string }, asOf: Date): Promise<PaymentsProfile> {
  // A plain SELECT (which may run in parallel) rather than CREATE TABLE AS: it returns one row per month.
  const months = await db.query<Record<string, string | null>>(
    `SELECT month_key::text, row_count::text, amount_sum::text, max_date::text, digest::text,
            first_payment::text, first_payment_as_of::text, non_positive::text,
            null_user_id::text, null_payment_id::text, null_payment_amount::text
       FROM (SELECT -- the month start at or after d, as monthCeilSql() but with one date_trunc per row
                    date_trunc('month', d - interval '1 microsecond') + interval '1 month' AS month_key,
                    COUNT(*) AS row_count,
                    SUM(amount) AS amount_sum,
                    MAX(d) AS max_date,
                    -- order-independent digest of which payment, whose, and when (amounts are summed above)
                    SUM(hashtextextended(payment_id, hashtext(user_id)) # CAST(date_part('epoch', d) * 1000000 AS bigint)) AS digest,
                    MIN(d) AS first_payment,
                    MIN(d) FILTER (WHERE d <= ${pg.escapeLiteral(asOf.toISOString())}::timestamptz) AS first_payment_as_of,
                    COUNT(*) FILTER (WHERE amount <= 0) AS non_positive,
                    COUNT(*) - COUNT(user_id) AS null_user_id,
                    COUNT(*) - COUNT(payment_id) AS null_payment_id,
                    COUNT(*) - COUNT(amount) AS null_payment_amount
               FROM (SELECT CAST(user_id AS text) AS user_id, CAST(payment_id AS text) AS payment_id,
                            CAST(payment_date AS timestamptz) AS d, CAST(payment_amount AS numeric) AS amount
                       FROM ${relation.sql}) AS p
              GROUP BY 1) AS months`);
  await db.query(`DROP TABLE IF EXISTS ${FINGERPRINT_TEMP}`);
  await db.query(`CREATE TEMPORARY TABLE _segsync_rfm_fingerprints_now (
      month_key timestamptz, row_count bigint, amount_sum numeric, max_date timestamptz, digest numeric,
      first_payment timestamptz, first_payment_as_of timestamptz, non_positive bigint,
      null_user_id bigint, null_payment_id bigint, null_payment_amount bigint) ON COMMIT DROP`);
  const cols = ['month_key', 'row_count', 'amount_sum', 'max_date', 'digest', 'first_payment', 'first_payment_as_of',
    'non_positive', 'null_user_id', 'null_payment_id', 'null_payment_amount'];
  await db.query(
    `INSERT INTO ${FINGERPRINT_TEMP} (${cols.join(', ')})
     SELECT ${cols.map((c) => `${c}::${c.includes('date') || c.includes('key') || c.startsWith('first') ? 'timestamptz' : 'numeric'}`).join(', ')}
       FROM unnest(${cols.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS m(${cols.join(', ')})`,
    cols.map((c) => months.rows.map((r) => r[c] ?? null)));
  const { rows } = await db.query<Record<string, string | Date | null>>(
    `SELECT COALESCE(SUM(row_count), 0)::text AS rows,
            COALESCE(SUM(row_count) FILTER (WHERE month_key IS NULL), 0)::text AS null_payment_date,
            COALESCE(SUM(null_user_id), 0)::text AS null_user_id,
            COALESCE(SUM(null_payment_id), 0)::text AS null_payment_id,
            COALESCE(SUM(null_payment_amount), 0)::text AS null_payment_amount,
            COALESCE(SUM(non_positive), 0)::text AS non_positive,
            MIN(first_payment) AS first_payment,
            MIN(first_payment_as_of) AS first_payment_as_of
       FROM ${FINGERPRINT_TEMP}`);
  const r = rows[0] ?? {};
  for (const column of ['user_id', 'payment_id', 'payment_date', 'payment_amount']) {
    const n = Number(r[`null_${column}`] ?? 0);
    if (n > 0) {
      throw new DataError('PAYMENTS_NULL', `payments relation ${relation.display}: ${n} row(s) with NULL ${column}; the models cannot place them`, {
        hint: `fix or delete them: SELECT * FROM ${relation.display} WHERE ${column} IS NULL`,
      });
    }
  }
  return {
    rows: Number(r.rows ?? 0),
    firstPayment: (r.first_payment as Date | null) ?? null,
    firstPaymentAsOf: (r.first_payment_as_of as Date | null) ?? null,
    nonPositive: Number(r.non_positive ?? 0),
  };
}
