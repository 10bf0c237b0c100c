import type pg from 'pg';
import { chunk } from '../db/chunk.ts';
import type { Mapping } from '../config/mapping.ts';
import { transformSql } from '../config/transforms.ts';
import { sourceSqlParams, type LoadedFile } from '../config/load.ts';
import { countMarkers, renderSourceSql } from '../config/source-sql.ts';
import { DataError } from '../errors.ts';
import { inSavepoint, withTransaction } from '../db/transaction.ts';
import { quoteIdent, quoteLiteral, quoteRelation } from '../db/sql.ts';

/**
 * How a mapping's records are read: the source as a subquery, the key as text, and the mapped payload as a
 * jsonb built in SQL. Transforms run in SQL too (src/config/transforms.ts), so the payload hash the planner
 * compares covers exactly the values the destination receives, and nothing is copied into Node to diff.
 *
 * A SQL source's `${VAR}` placeholders are bind parameters: `from` numbers them $1.. and `params` holds
 * their values; a statement with parameters of its own embeds `at(n)`, whose placeholders come after its n.
 * Every statement that embeds the source is sent with sourceStatement (the extended protocol: one statement).
 */
export interface SourceQuery {
  /** `(SELECT ...) src`: usable in FROM. */
  from: string;
  key: string;
  payload: string;
  /**
   * The mapped values (the same expressions the payload is built from) as one row's text: hashed, it tells an
   * unchanged record from a changed one without building its jsonb payload (src/state/plan-items.ts).
   */
  values: string;
  /** The source columns the payload reads (quoted), for a plan that carries only them; absent: all columns. */
  columns?: string[];
  /** The values of the source's placeholders, to append after the statement's own parameters. */
  params: readonly string[];
  /** The same query with its placeholders numbered from $offset+1. */
  at(offset: number): SourceQuery;
  /** The quoted relation when the source is a model (not SQL), and the key column's name in it. */
  relation?: { name: string; key: string };
}

/**
 * A statement that embeds a source, as a pg query config sent over the extended protocol even without
 * parameters: PostgreSQL then refuses a second statement in it. (pg uses the simple protocol for a query
 * without values, which would run every statement in the text.)
 */
export function sourceStatement(text: string, values: readonly unknown[] = []): pg.QueryConfig {
  return { text, values: [...values], queryMode: 'extended' } as pg.QueryConfig;
}

export function sourceQuery(mapping: Mapping, modelsSchema: string): SourceQuery {
  const model = mapping.source.model;
  const text = model !== undefined ? `SELECT * FROM ${quoteRelation(model, modelsSchema)}` : mapping.source.sql!.replace(/[;\s]*$/, '');
  const params = model !== undefined ? [] : sourceSqlParams(mapping.source);
  if (countMarkers(text) !== params.length) {
    throw new DataError('SOURCE_PARAMS_MISSING', `mapping '${mapping.name}': source.sql has ${countMarkers(text)} placeholder(s) and ${params.length} value(s)`, { hint: 'pass the mapping as loaded by loadProject (its source object carries the values)' });
  }
  // jsonb_build_object takes at most 100 arguments: build 40 fields at a time and concatenate.
  const pairs = mapping.fields.map((f) => `${quoteLiteral(f.to)}, ${transformSql(f.from, f.transform)}`);
  const payload = chunk(pairs, 40).map((part) => `jsonb_build_object(${part.join(', ')})`).join(' || ');
  const columns = [...new Set(mapping.fields.map((f) => quoteIdent(f.from)))];
  const values = `ROW(${mapping.fields.map((f) => transformSql(f.from, f.transform)).join(', ')})::text`;
  const at = (offset: number): SourceQuery => {
    // The newline ends a trailing -- comment before the closing parenthesis.
    const q: SourceQuery = { from: `(${renderSourceSql(text, offset)}\n) src`, key: `${quoteIdent(mapping.source.key)}::text`, payload, values, columns, params, at };
    if (model !== undefined) q.relation = { name: quoteRelation(model, modelsSchema), key: mapping.source.key };
    return q;
  };
  return at(0);
}

export interface SourceColumn {
  name: string;
  typeOid: number;
}

/**
 * Checks that the source can be read and has the key and every mapped column, inside a READ ONLY transaction
 * that is rolled back: a SQL source is first executed whole there, so one that writes (a data-modifying
 * function, nextval) fails here, before a run is recorded or anything planned. Errors name the mapping file
 * and position of the offending setting, with the database's message, and list the columns that do exist.
 */
export async function checkSource(pool: pg.Pool, file: LoadedFile<Mapping>, modelsSchema: string): Promise<SourceColumn[]> {
  return withTransaction(pool, (client) => checkSourceIn(client, file, modelsSchema), { begin: 'BEGIN READ ONLY', commit: false });
}

async function checkSourceIn(client: pg.ClientBase, file: LoadedFile<Mapping>, modelsSchema: string): Promise<SourceColumn[]> {
  const mapping = file.value;
  const q = sourceQuery(mapping, modelsSchema);
  const setting = mapping.source.model !== undefined ? 'model' : 'sql';
  const at = file.where(['source', setting]);
  const where = `${file.file}:${at.line}:${at.column}`;
  const unreadable = (err: unknown, prefix: string): DataError => {
    const e = err as Error & { code?: string; position?: string };
    if (e.code === '25006') {
      return new DataError('SOURCE_NOT_READ_ONLY', `${where}: the source of mapping '${mapping.name}' writes to the database: ${e.message}`, {
        cause: err, hint: 'a source must only read: segsync runs it in a READ ONLY transaction first (move writes into a model build)',
      });
    }
    const line = e.position !== undefined ? lineInSource(prefix, q.from, Number(e.position)) : null;
    return new DataError('SOURCE_UNREADABLE', `${where}: cannot read the source of mapping '${mapping.name}': ${e.message}${line === null ? '' : ` (at line ${line} of source.${setting})`}`, {
      cause: err,
      hint: mapping.source.model !== undefined ? `does ${mapping.source.model} exist in schema ${modelsSchema}? (segsync models build creates the RFM models)` : 'run the SQL in psql to see the problem',
    });
  };
  let fields: pg.FieldDef[];
  const head = 'SELECT * FROM ';
  try {
    fields = (await client.query(sourceStatement(`${head}${q.from} LIMIT 0`, q.params))).fields;
    // LIMIT 0 evaluates nothing; the whole source runs once (a SQL source only: a model is a relation).
    if (mapping.source.sql !== undefined) await client.query(sourceStatement(`SELECT count(*) FROM ${q.from}`, q.params));
  } catch (err) {
    throw unreadable(err, head);
  }
  const names = new Set(fields.map((f) => f.name));
  const problems: string[] = [];
  const missing = (col: string, where: (string | number)[], what: string) => {
    const at = file.where(where);
    problems.push(`${file.file}:${at.line}:${at.column}: ${what} column '${col}' is not in the source (QUERY_COLUMN_MISSING)`);
  };
  if (!names.has(mapping.source.key)) missing(mapping.source.key, ['source', 'key'], 'key');
  mapping.fields.forEach((f, i) => { if (!names.has(f.from)) missing(f.from, ['fields', i, 'from'], `field '${f.to}':`); });
  if (problems.length) {
    throw new DataError('QUERY_COLUMN_MISSING', problems.join('\n'), { hint: `the source has: ${[...names].join(', ')}` });
  }
  // A transform the column's type cannot take (date on an integer, number on a boolean) fails when
  // PostgreSQL plans the expression: find it now, per field, instead of mid-run. Each in a savepoint, so
  // that one failure does not abort the transaction the others run in.
  for (const [i, f] of mapping.fields.entries()) {
    if (f.transform === undefined) continue;
    try {
      await inSavepoint(client, () => client.query(sourceStatement(`SELECT ${transformSql(f.from, f.transform)} FROM ${q.from} LIMIT 0`, q.params)));
    } catch (err) {
      const at = file.where(['fields', i, 'transform']);
      const type = fields.find((c) => c.name === f.from)?.dataTypeID;
      problems.push(`${file.file}:${at.line}:${at.column}: field '${f.to}': transform ${JSON.stringify(f.transform)} does not fit column '${f.from}' (type oid ${type}): ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new DataError('FIELD_TYPE_MISMATCH', problems.join('\n'), { hint: 'change the transform or cast the column in source.sql' });
  return fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID }));
}

/** The line of the source text a database error position (1-based, in `prefix + from`) falls on, or null. */
function lineInSource(prefix: string, from: string, position: number): number | null {
  const offset = position - 1 - prefix.length - 1; // from opens with '('
  if (!(offset >= 0 && offset < from.length - '\n) src'.length - 1)) return null;
  return from.slice(1, 1 + offset).split('\n').length;
}
