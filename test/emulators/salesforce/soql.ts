import { apiError, type Reply } from './collections.ts';
import type { Org, SfRecord, SfValue } from './org.ts';

/**
 * The SOQL subset segsync sends: SELECT f1, f2 FROM Obj [WHERE cond AND cond ...], where a condition is
 * `field IN (literal, ...)`, `field = literal` or `field != literal`. Anything else is MALFORMED_QUERY, as an
 * org would answer a query it cannot parse; an unknown field is INVALID_FIELD.
 */

export class SoqlError extends Error {
  readonly errorCode: string;
  constructor(errorCode: string, message: string) {
    super(message);
    this.errorCode = errorCode;
  }
}

export interface ParsedQuery {
  object: string;
  fields: string[];
  where: Array<{ field: string; op: 'in' | '=' | '!='; values: SfValue[] }>;
}

export const MAX_QUERY_LENGTH = 100_000;

const TOKEN = /\s*(?:('(?:[^'\\]|\\.)*')|([A-Za-z_][A-Za-z0-9_.]*)|(-?\d+(?:\.\d+)?)|(!=|[(),=]))/y;

function tokenize(q: string): Array<{ kind: 'str' | 'word' | 'num' | 'sym'; text: string }> {
  const out: Array<{ kind: 'str' | 'word' | 'num' | 'sym'; text: string }> = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < q.length) {
    if (/^\s*$/.test(q.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(q);
    if (!m) throw new SoqlError('MALFORMED_QUERY', `unexpected token at ${at}: ${q.slice(at, at + 20)}`);
    if (m[1] !== undefined) out.push({ kind: 'str', text: m[1].slice(1, -1).replace(/\\(.)/g, '$1') });
    else if (m[2] !== undefined) out.push({ kind: 'word', text: m[2] });
    else if (m[3] !== undefined) out.push({ kind: 'num', text: m[3] });
    else out.push({ kind: 'sym', text: m[4]! });
  }
  return out;
}

export function parseSoql(org: Org, q: string): ParsedQuery {
  if (q.length > MAX_QUERY_LENGTH) throw new SoqlError('MALFORMED_QUERY', `Query is too long: ${q.length} characters (max ${MAX_QUERY_LENGTH})`);
  const t = tokenize(q);
  let i = 0;
  const word = (w: string): boolean => t[i]?.kind === 'word' && t[i]!.text.toUpperCase() === w;
  const expect = (ok: boolean, what: string): void => {
    if (!ok) throw new SoqlError('MALFORMED_QUERY', `expecting ${what}, unexpected token: '${t[i]?.text ?? '<EOF>'}'`);
  };
  expect(word('SELECT'), 'SELECT'); i++;
  const fields: string[] = [];
  for (;;) {
    expect(t[i]?.kind === 'word' && !word('FROM'), 'a field name');
    fields.push(t[i++]!.text);
    if (t[i]?.text === ',') { i++; continue; }
    break;
  }
  expect(word('FROM'), 'FROM'); i++;
  expect(t[i]?.kind === 'word', 'an object name');
  const objName = t[i++]!.text;
  const obj = [...org.objects.values()].find((o) => o.name.toLowerCase() === objName.toLowerCase());
  if (!obj) throw new SoqlError('INVALID_TYPE', `sObject type '${objName}' is not supported.`);
  const check = (f: string): string => {
    const hit = org.fieldOf(obj.name, f);
    if (!hit) throw new SoqlError('INVALID_FIELD', `No such column '${f}' on entity '${obj.name}'.`);
    return hit.name;
  };
  const literal = (): SfValue => {
    const tok = t[i++];
    if (!tok) throw new SoqlError('MALFORMED_QUERY', 'unexpected end of query');
    if (tok.kind === 'str') return tok.text;
    if (tok.kind === 'num') return Number(tok.text);
    if (tok.kind === 'word' && /^(true|false)$/i.test(tok.text)) return tok.text.toLowerCase() === 'true';
    if (tok.kind === 'word' && /^null$/i.test(tok.text)) return null;
    throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${tok.text}'`);
  };
  const where: ParsedQuery['where'] = [];
  if (word('WHERE')) {
    i++;
    for (;;) {
      expect(t[i]?.kind === 'word', 'a field name');
      const field = check(t[i++]!.text);
      if (word('IN')) {
        i++;
        expect(t[i]?.text === '(', '(');
        i++;
        const values: SfValue[] = [literal()];
        while (t[i]?.text === ',') { i++; values.push(literal()); }
        expect(t[i]?.text === ')', ')');
        i++;
        where.push({ field, op: 'in', values });
      } else {
        const op = t[i]?.text;
        expect(op === '=' || op === '!=', 'IN, = or !=');
        i++;
        where.push({ field, op: op as '=' | '!=', values: [literal()] });
      }
      if (word('AND')) { i++; continue; }
      break;
    }
  }
  if (i < t.length) throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${t[i]!.text}'`);
  return { object: obj.name, fields: fields.map(check), where };
}

function same(a: SfValue | undefined, b: SfValue): boolean {
  if (a === undefined || a === null) return b === null;
  if (b === null) return false;
  return typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b.toLowerCase() : a === b;
}

export function runSoql(org: Org, q: ParsedQuery): SfRecord[] {
  const out: SfRecord[] = [];
  // An IN on an external id goes through the index, as the real query planner would use it.
  const indexed = q.where.find((c) => c.op === 'in' && org.fieldOf(q.object, c.field)?.externalId);
  const candidates = indexed
    ? [...new Map(indexed.values.flatMap((v) => org.findByField(q.object, indexed.field, v)).map((r) => [r.Id, r])).values()]
    : org.records.get(q.object)!.values();
  for (const r of candidates) {
    const ok = q.where.every((c) => {
      const hit = c.values.some((v) => same(r[c.field], v));
      return c.op === '!=' ? !hit : hit;
    });
    if (!ok) continue;
    const row: SfRecord = {};
    for (const f of q.fields) row[f] = r[f] ?? null;
    out.push(row);
  }
  return out;
}

const QUERY_PAGE = 2000;

/** Query results kept behind a locator and served in pages of 2,000, as nextRecordsUrl promises. */
export class QueryCursors {
  private readonly org: Org;
  private readonly locators = new Map<string, Array<Record<string, unknown>>>();
  private seq = 0;

  constructor(org: Org) {
    this.org = org;
  }

  query(version: string, q: string): Reply {
    const parsed = parseSoql(this.org, q);
    const rows = runSoql(this.org, parsed).map((r) => ({ attributes: { type: parsed.object, url: `/services/data/v${version}/sobjects/${parsed.object}/${String(r.Id ?? '')}` }, ...r }));
    this.seq += 1;
    const locator = `01g${String(this.seq).padStart(12, '0')}AAA`;
    this.locators.set(locator, rows);
    return this.pageAt(version, locator, 0);
  }

  page(version: string, locatorAndOffset: string): Reply {
    const [locator, offset] = locatorAndOffset.split('-');
    if (!locator || !this.locators.has(locator) || !offset) return apiError(400, 'INVALID_QUERY_LOCATOR', 'invalid query locator');
    return this.pageAt(version, locator, Number(offset));
  }

  private pageAt(version: string, locator: string, offset: number): Reply {
    const rows = this.locators.get(locator)!;
    const slice = rows.slice(offset, offset + QUERY_PAGE);
    const done = offset + QUERY_PAGE >= rows.length;
    if (done) this.locators.delete(locator);
    return {
      status: 200,
      body: { totalSize: rows.length, done, ...(done ? {} : { nextRecordsUrl: `/services/data/v${version}/query/${locator}-${offset + QUERY_PAGE}` }), records: slice },
    };
  }
}
