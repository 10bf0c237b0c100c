import { apiError, type Reply } from './collections.ts';
import type { Org, SfRecord, SfValue } from './org.ts';

/**
 * The SOQL subset segsync sends: SELECT f1, f2 FROM Obj [WHERE expr], where expr is conditions joined by AND
 * or by OR (mixing the two needs parentheses, as in SOQL), and a condition is `field IN (literal, ...)` or
 * `field op literal` with op one of = != < <= > >=. Literals: 'strings', numbers, true/false, null, and the
 * unquoted date (YYYY-MM-DD) and dateTime (YYYY-MM-DDThh:mm:ss with Z or +hh:mm) literals; a quoted value
 * against a date or dateTime field is refused, as Salesforce does. Anything else is MALFORMED_QUERY, as an
 * org would answer a query it cannot parse; an unknown field is INVALID_FIELD.
 */

export class SoqlError extends Error {
  readonly errorCode: string;
  constructor(errorCode: string, message: string) {
    super(message);
    this.errorCode = errorCode;
  }
}

export type CompareOp = 'in' | '=' | '!=' | '<' | '<=' | '>' | '>=';
type Literal = { kind: 'value'; value: SfValue } | { kind: 'date' | 'datetime'; value: string; at: number };
export type Where =
  | { kind: 'cond'; field: string; op: CompareOp; values: Literal[] }
  | { kind: 'and' | 'or'; parts: Where[] };

export interface ParsedQuery {
  object: string;
  fields: string[];
  where: Where | null;
}

export const MAX_QUERY_LENGTH = 100_000;

const DATETIME_LITERAL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$/;
const TOKEN = /\s*(?:('(?:[^'\\]|\\.)*')|(\d{4}-\d{2}-\d{2}T[0-9:.+-]+Z?|\d{4}-\d{2}-\d{2}(?![\d.]))|([A-Za-z_][A-Za-z0-9_.]*)|(-?\d+(?:\.\d+)?)|(!=|<=|>=|[(),=<>]))/y;

type Token = { kind: 'str' | 'word' | 'num' | 'sym' | 'date' | 'datetime'; text: string };

function tokenize(q: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < q.length) {
    if (/^\s*$/.test(q.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(q);
    if (!m) throw new SoqlError('MALFORMED_QUERY', `unexpected token at ${at}: ${q.slice(at, at + 20)}`);
    if (m[1] !== undefined) out.push({ kind: 'str', text: m[1].slice(1, -1).replace(/\\(.)/g, '$1') });
    else if (m[2] !== undefined) {
      if (m[2].includes('T') && !DATETIME_LITERAL.test(m[2])) throw new SoqlError('MALFORMED_QUERY', `line 1:${at} Invalid datetime: ${m[2]}`);
      out.push({ kind: m[2].includes('T') ? 'datetime' : 'date', text: m[2] });
    } else if (m[3] !== undefined) out.push({ kind: 'word', text: m[3] });
    else if (m[4] !== undefined) out.push({ kind: 'num', text: m[4] });
    else out.push({ kind: 'sym', text: m[5]! });
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
  const literal = (field: string): Literal => {
    const tok = t[i++];
    if (!tok) throw new SoqlError('MALFORMED_QUERY', 'unexpected end of query');
    const type = org.fieldOf(obj.name, field)!.type;
    if ((type === 'date' || type === 'datetime') && tok.kind === 'str') {
      throw new SoqlError('INVALID_FIELD', `value of filter criterion for field '${field}' must be of type ${type === 'date' ? 'date' : 'dateTime'} and should not be enclosed in quotes`);
    }
    if (tok.kind === 'date' || tok.kind === 'datetime') {
      if (type !== 'date' && type !== 'datetime') throw new SoqlError('INVALID_FIELD', `value of filter criterion for field '${field}' must be of type ${type} and should be enclosed in quotes`);
      if (type === 'datetime' && tok.kind === 'date') throw new SoqlError('INVALID_FIELD', `value of filter criterion for field '${field}' must be of type dateTime`);
      const at = Date.parse(tok.kind === 'date' ? `${tok.text}T00:00:00Z` : tok.text);
      if (!Number.isFinite(at)) throw new SoqlError('MALFORMED_QUERY', `Invalid ${tok.kind === 'date' ? 'date' : 'datetime'}: ${tok.text}`);
      return { kind: tok.kind, value: tok.text, at };
    }
    if (tok.kind === 'str') return { kind: 'value', value: tok.text };
    if (tok.kind === 'num') return { kind: 'value', value: Number(tok.text) };
    if (tok.kind === 'word' && /^(true|false)$/i.test(tok.text)) return { kind: 'value', value: tok.text.toLowerCase() === 'true' };
    if (tok.kind === 'word' && /^null$/i.test(tok.text)) return { kind: 'value', value: null };
    throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${tok.text}'`);
  };
  const condition = (): Where => {
    if (t[i]?.text === '(' && t[i]?.kind === 'sym') {
      i++;
      const inner = expression();
      expect(t[i]?.text === ')', ')');
      i++;
      return inner;
    }
    expect(t[i]?.kind === 'word', 'a field name');
    const field = check(t[i++]!.text);
    if (word('IN')) {
      i++;
      expect(t[i]?.text === '(', '(');
      i++;
      const values: Literal[] = [literal(field)];
      while (t[i]?.text === ',') { i++; values.push(literal(field)); }
      expect(t[i]?.text === ')', ')');
      i++;
      return { kind: 'cond', field, op: 'in', values };
    }
    const op = t[i]?.kind === 'sym' ? t[i]!.text : '';
    expect(['=', '!=', '<', '<=', '>', '>='].includes(op), 'IN, =, !=, <, <=, > or >=');
    i++;
    const value = literal(field);
    if (op !== '=' && op !== '!=' && value.kind === 'value' && value.value === null) throw new SoqlError('MALFORMED_QUERY', `null cannot be compared with ${op}`);
    return { kind: 'cond', field, op: op as CompareOp, values: [value] };
  };
  const expression = (): Where => {
    const first = condition();
    const join = word('AND') ? 'and' : word('OR') ? 'or' : null;
    if (!join) return first;
    const parts = [first];
    while (word(join.toUpperCase())) { i++; parts.push(condition()); }
    // SOQL has no precedence between AND and OR: mixing them needs parentheses.
    if (word('AND') || word('OR')) throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${t[i]!.text}' (use parentheses to mix AND and OR)`);
    return { kind: join, parts };
  };
  let where: Where | null = null;
  if (word('WHERE')) {
    i++;
    where = expression();
  }
  if (i < t.length) throw new SoqlError('MALFORMED_QUERY', `unexpected token: '${t[i]!.text}'`);
  return { object: obj.name, fields: fields.map(check), where };
}

function same(a: SfValue | undefined, b: SfValue): boolean {
  if (a === undefined || a === null) return b === null;
  if (b === null) return false;
  return typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b.toLowerCase() : a === b;
}

/** A stored date or dateTime ("2026-01-02T03:04:05.000+0000") as an instant. */
function instant(v: SfValue | undefined): number | null {
  if (typeof v !== 'string') return null;
  const at = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isFinite(at) ? at : null;
}

function compare(a: SfValue | undefined, lit: Literal): number | null {
  if (lit.kind !== 'value') {
    const at = instant(a);
    return at === null ? null : at - lit.at;
  }
  const b = lit.value;
  if (a === undefined || a === null || b === null) return null;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0;
  return null;
}

function matches(r: SfRecord, w: Where): boolean {
  if (w.kind !== 'cond') return w.kind === 'and' ? w.parts.every((p) => matches(r, p)) : w.parts.some((p) => matches(r, p));
  const v = r[w.field];
  switch (w.op) {
    case 'in': case '=': case '!=': {
      const hit = w.values.some((lit) => (lit.kind === 'value' ? same(v, lit.value) : compare(v, lit) === 0));
      return w.op === '!=' ? !hit : hit;
    }
    default: {
      const c = compare(v, w.values[0]!);
      if (c === null) return false;
      return w.op === '<' ? c < 0 : w.op === '<=' ? c <= 0 : w.op === '>' ? c > 0 : c >= 0;
    }
  }
}

export function runSoql(org: Org, q: ParsedQuery): SfRecord[] {
  const out: SfRecord[] = [];
  // An IN on an external id at the top level goes through the index, as the real query planner would use it.
  const top = q.where === null ? [] : q.where.kind === 'and' ? q.where.parts : [q.where];
  const indexed = top.find((c): c is Extract<Where, { kind: 'cond' }> => c.kind === 'cond' && c.op === 'in' && org.fieldOf(q.object, c.field)?.externalId === true);
  const candidates = indexed
    ? [...new Map(indexed.values.flatMap((v) => (v.kind === 'value' ? org.findByField(q.object, indexed.field, v.value) : [])).map((r) => [r.Id, r])).values()]
    : org.records.get(q.object)!.values();
  for (const r of candidates) {
    if (q.where && !matches(r, q.where)) continue;
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
