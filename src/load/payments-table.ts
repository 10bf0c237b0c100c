import type pg from 'pg';
import type { Settings } from '../config/settings.ts';
import { DataError, UsageError } from '../errors.ts';
import { quoteIdent } from '../db/sql.ts';

/** Anything that runs a query: the pool, or one client holding a transaction. */
export type Queryable = pg.Pool | pg.PoolClient;

/** A schema-qualified relation, with its SQL spelling (quoted) and a spelling for people. */
export interface Relation {
  schema: string;
  name: string;
  /** Quoted and qualified, safe to splice into SQL. */
  sql: string;
  /** schema.name, for messages. */
  display: string;
}

const IDENT = /^[a-z_][a-z0-9_]*$/;

/**
 * Parses `name` or `schema.name` (lower-case SQL identifiers, as settings allow). An unqualified name lives in
 * `defaultSchema` (settings `models.schema`).
 */
export function parseRelation(spec: string, defaultSchema = 'public'): Relation {
  const parts = spec.split('.');
  const [schema, name] = parts.length === 2 ? [parts[0]!, parts[1]!] : [defaultSchema, parts[0]!];
  if (parts.length > 2 || !IDENT.test(schema) || !IDENT.test(name)) {
    throw new UsageError(`invalid relation name "${spec}"`, 'use name or schema.name with lower-case letters, digits and _ (e.g. fact_payments or analytics.fact_payments)');
  }
  return { schema, name, sql: `${quoteIdent(schema)}.${quoteIdent(name)}`, display: `${schema}.${name}` };
}

/** The payments relation from settings (`models.payments` in schema `models.schema`), or an explicit override. */
export function paymentsRelation(settings: Settings, override?: string): Relation {
  return parseRelation(override ?? settings.models.payments, settings.models.schema);
}

/** The payments contract: the columns every loader writes and the models read. */
export const PAYMENT_COLUMNS = ['user_id', 'payment_id', 'payment_date', 'payment_amount'] as const;

const ACCEPTED_TYPES: Record<(typeof PAYMENT_COLUMNS)[number], string[]> = {
  user_id: ['text', 'character varying', 'character'],
  payment_id: ['text', 'character varying', 'character'],
  payment_date: ['timestamp with time zone', 'timestamp without time zone'],
  payment_amount: ['numeric', 'double precision', 'real', 'integer', 'bigint', 'smallint'],
};

/**
 * Creates the payments table if it does not exist, and otherwise checks that it can take loads: a table (not a
 * view), the four contract columns with usable types, and a unique index on payment_id alone (the identity
 * that makes a re-load change nothing). Run it inside the load's transaction so a failed load does not even
 * leave a new empty table behind.
 */
export async function ensurePaymentsTable(db: Queryable, relation: Relation | string): Promise<Relation> {
  const rel = typeof relation === 'string' ? parseRelation(relation) : relation;
  const kind = await db.query<{ relkind: string }>(
    `select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2`,
    [rel.schema, rel.name],
  );
  if (kind.rows.length === 0) {
    await db.query(`create schema if not exists ${quoteIdent(rel.schema)}`);
    await db.query(`create table if not exists ${rel.sql} (
      user_id text not null,
      payment_id text primary key,
      payment_date timestamptz not null,
      payment_amount numeric not null
    )`);
    return rel;
  }
  if (!['r', 'p'].includes(kind.rows[0]!.relkind)) {
    throw new DataError('PAYMENTS_NOT_A_TABLE', `${rel.display} is not a table (it is a view or another kind of relation); segsync loads payments only into a table`, {
      hint: 'point --relation (or models.payments in config/segsync.yaml) at a table, or load into the table your view reads',
    });
  }
  const cols = await db.query<{ column_name: string; data_type: string }>(
    `select column_name, data_type from information_schema.columns where table_schema = $1 and table_name = $2`,
    [rel.schema, rel.name],
  );
  const types = new Map(cols.rows.map((r) => [r.column_name, r.data_type]));
  for (const col of PAYMENT_COLUMNS) {
    const type = types.get(col);
    if (type === undefined) {
      throw new DataError('PAYMENTS_COLUMN_MISSING', `${rel.display} has no column ${col}; the payments relation needs ${PAYMENT_COLUMNS.join(', ')} (it has ${[...types.keys()].join(', ')})`);
    }
    if (!ACCEPTED_TYPES[col].includes(type)) {
      throw new DataError('PAYMENTS_COLUMN_TYPE', `${rel.display}.${col} is ${type}; expected one of ${ACCEPTED_TYPES[col].join(', ')}`);
    }
  }
  const unique = await db.query(
    `select 1 from pg_index i
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
      where i.indrelid = $1::regclass and i.indisunique and i.indnkeyatts = 1 and i.indpred is null and a.attname = 'payment_id'`,
    [rel.sql],
  );
  if (unique.rows.length === 0) {
    throw new DataError('PAYMENTS_NO_IDENTITY', `${rel.display} has no unique index on payment_id; loads need it so that a re-load changes nothing`, {
      hint: `create unique index on ${rel.display} (payment_id)`,
    });
  }
  return rel;
}
