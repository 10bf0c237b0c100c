import pg from 'pg';
import { DataError } from '../errors.ts';
import { quoteIdent, quoteRelation } from '../db/sql.ts';

/** Anything that runs a query: a pool or the one client a build holds for its transaction. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

export { quoteIdent };

/** `schema.table` (or a bare `table`, which lives in `defaultSchema`), quoted part by part. */
export function qualify(relation: string, defaultSchema: string): { sql: string; display: string } {
  try {
    return { sql: quoteRelation(relation, defaultSchema), display: relation.includes('.') ? relation : `${defaultSchema}.${relation}` };
  } catch {
    throw new DataError('PAYMENTS_RELATION_INVALID', `payments relation "${relation}" (models.payments) is not a table name or schema.table`);
  }
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
