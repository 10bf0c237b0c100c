import { DestinationError } from '../../src/errors.ts';
import { compareRecord } from '../compare.ts';
import type { ReadBackRequest, ReadBackResult } from '../types.ts';
import type { SfApi } from './api.ts';

/**
 * SOQL lookups by external id in chunks (`WHERE <field> IN (...)`), following nextRecordsUrl page by page
 * with explicit requests: jsforce's autoFetch would stop silently at maxFetch (10,000 rows).
 */

export type SfRow = Record<string, unknown> & { attributes?: unknown };
interface QueryPage { done: boolean; nextRecordsUrl?: string; records: SfRow[] }

/** Keys per query and a character budget well under SOQL's 100,000-character statement limit. */
const KEYS_PER_QUERY = 500;
const MAX_SOQL_CHARS = 60_000;

export function soqlString(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}'`;
}

export function fieldName(name: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?$/.test(name)) throw new DestinationError('SALESFORCE_BAD_FIELD', `not a Salesforce field name: ${JSON.stringify(name)} (check the mapping's fields and match_key)`);
  return name;
}

/** Splits values into IN-lists that keep each statement small. */
export function inLists(values: string[], fixedChars: number): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let chars = fixedChars;
  for (const v of values) {
    const len = soqlString(v).length + 1;
    if (cur.length > 0 && (cur.length >= KEYS_PER_QUERY || chars + len > MAX_SOQL_CHARS)) {
      out.push(cur);
      cur = [];
      chars = fixedChars;
    }
    cur.push(v);
    chars += len;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** Every row of one SOQL statement, page by page through nextRecordsUrl (`what` names it in errors). */
export async function queryAll(api: SfApi, what: string, soql: string): Promise<SfRow[]> {
  const rows: SfRow[] = [];
  const base = `/services/data/v${api.conn.version}`;
  let page = await api.once(what, () => api.conn.request<QueryPage>(`${base}/query?q=${encodeURIComponent(soql)}`), { read: true });
  rows.push(...page.records);
  while (!page.done && page.nextRecordsUrl) {
    const next = page.nextRecordsUrl;
    page = await api.once(`${what} (next page)`, () => api.conn.request<QueryPage>(next), { read: true });
    rows.push(...page.records);
  }
  return rows;
}

/** Every row of `SELECT fields FROM object WHERE inField IN (values) [AND extra]`, all pages. */
export async function selectIn(api: SfApi, object: string, fields: string[], inField: string, values: string[], extra = ''): Promise<SfRow[]> {
  const select = `SELECT ${[...new Set(fields)].map(fieldName).join(', ')} FROM ${fieldName(object)} WHERE ${fieldName(inField)} IN (`;
  const tail = `)${extra ? ` AND ${extra}` : ''}`;
  const rows: SfRow[] = [];
  for (const list of inLists([...new Set(values)], select.length + tail.length)) {
    rows.push(...await queryAll(api, `query ${object}`, `${select}${list.map(soqlString).join(',')}${tail}`));
  }
  return rows;
}

/** Index rows by the external id (as text; Salesforce external ids match case-insensitively). */
export function byExternalId(rows: SfRow[], field: string): Map<string, SfRow> {
  const out = new Map<string, SfRow>();
  for (const r of rows) {
    const v = r[field];
    if (v !== null && v !== undefined) out.set(String(v).toLowerCase(), r);
  }
  return out;
}

export async function readBack(api: SfApi, object: string, matchKey: string, requests: ReadBackRequest[]): Promise<ReadBackResult[]> {
  const fields = new Set<string>(['Id', matchKey]);
  for (const r of requests) for (const f of Object.keys(r.expected)) fields.add(f);
  const rows = byExternalId(await selectIn(api, object, [...fields], matchKey, requests.map((r) => r.key)), matchKey);
  return requests.map((req): ReadBackResult => {
    const row = rows.get(req.key.toLowerCase());
    if (!row) return { key: req.key, status: 'missing', destinationId: req.destinationId, detail: `no ${object} with this ${matchKey}` };
    // Salesforce answers in JSON types ('' stored as null, numbers as numbers): the shared rules need no help.
    const { actual, driftedFields: drifted } = compareRecord(req.expected, row);
    const id = typeof row.Id === 'string' ? row.Id : null;
    return drifted.length > 0
      ? { key: req.key, status: 'drifted', actual, driftedFields: drifted, destinationId: id, detail: `changed in Salesforce: ${drifted.join(', ')}` }
      : { key: req.key, status: 'verified', actual, destinationId: id };
  });
}
