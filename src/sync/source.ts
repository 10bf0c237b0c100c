import type pg from 'pg';
import { chunk } from '../db/chunk.ts';
import type { Mapping } from '../config/mapping.ts';
import { transformSql } from '../config/transforms.ts';
import type { LoadedFile } from '../config/load.ts';
import { DataError } from '../errors.ts';
import { quoteIdent, quoteLiteral, quoteRelation } from '../db/sql.ts';

/**
 * How a mapping's records are read: the source as a subquery, the key as text, and the mapped payload as a
 * jsonb built in SQL. Transforms run in SQL too (src/config/transforms.ts), so the payload hash the planner
 * compares covers exactly the values the destination receives, and nothing is copied into Node to diff.
 */
export interface SourceQuery {
  /** `(SELECT ...) src`: usable in FROM. */
  from: string;
  key: string;
  payload: string;
  /** The quoted relation when the source is a model (not SQL), and the key column's name in it. */
  relation?: { name: string; key: string };
}

export function sourceQuery(mapping: Mapping, modelsSchema: string): SourceQuery {
  const inner = mapping.source.model !== undefined
    ? `SELECT * FROM ${quoteRelation(mapping.source.model, modelsSchema)}`
    : mapping.source.sql!.trim().replace(/;\s*$/, '');
  // jsonb_build_object takes at most 100 arguments: build 40 fields at a time and concatenate.
  const pairs = mapping.fields.map((f) => `${quoteLiteral(f.to)}, ${transformSql(f.from, f.transform)}`);
  const payload = chunk(pairs, 40).map((part) => `jsonb_build_object(${part.join(', ')})`).join(' || ');
  const q: SourceQuery = { from: `(${inner}) src`, key: `${quoteIdent(mapping.source.key)}::text`, payload };
  if (mapping.source.model !== undefined) q.relation = { name: quoteRelation(mapping.source.model, modelsSchema), key: mapping.source.key };
  return q;
}

export interface SourceColumn {
  name: string;
  typeOid: number;
}

/**
 * Checks that the source can be read and has the key and every mapped column. Errors name the mapping file
 * and position of the offending setting and list the columns that do exist.
 */
export async function checkSource(pool: pg.Pool, file: LoadedFile<Mapping>, modelsSchema: string): Promise<SourceColumn[]> {
  const mapping = file.value;
  const q = sourceQuery(mapping, modelsSchema);
  let fields: pg.FieldDef[];
  try {
    fields = (await pool.query(`SELECT * FROM ${q.from} LIMIT 0`)).fields;
  } catch (err) {
    const at = file.where(['source', mapping.source.model !== undefined ? 'model' : 'sql']);
    throw new DataError('SOURCE_UNREADABLE', `${file.file}:${at.line}:${at.column}: cannot read the source of mapping '${mapping.name}': ${(err as Error).message}`, {
      cause: err,
      hint: mapping.source.model !== undefined ? `does ${mapping.source.model} exist in schema ${modelsSchema}? (segsync models build creates the RFM models)` : 'run the SQL in psql to see the problem',
    });
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
  // PostgreSQL plans the expression: find it now, per field, instead of mid-run.
  for (const [i, f] of mapping.fields.entries()) {
    if (f.transform === undefined) continue;
    try {
      await pool.query(`SELECT ${transformSql(f.from, f.transform)} FROM ${q.from} LIMIT 0`);
    } catch (err) {
      const at = file.where(['fields', i, 'transform']);
      const type = fields.find((c) => c.name === f.from)?.dataTypeID;
      problems.push(`${file.file}:${at.line}:${at.column}: field '${f.to}': transform ${JSON.stringify(f.transform)} does not fit column '${f.from}' (type oid ${type}): ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new DataError('FIELD_TYPE_MISMATCH', problems.join('\n'), { hint: 'change the transform or cast the column in source.sql' });
  return fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID }));
}
