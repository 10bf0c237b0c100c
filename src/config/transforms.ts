import { quoteIdent, quoteLiteral } from '../db/sql.ts';
import type { Transform } from './mapping.ts';

/**
 * The mapping transforms, defined once. The engine applies them in SQL (so the payload hash covers exactly
 * what is sent); destinations that must know a transformed value without the warehouse (HubSpot's
 * enumeration options for the segment) use the JavaScript side. Both sides of a transform sit in one entry of
 * this table and test/transforms.test.ts runs both over the same sample values against PostgreSQL.
 *
 * The JavaScript side takes a value as PostgreSQL renders it as text (the warehouse session is UTC) and gives
 * what the payload holds: text, a number, or null for NULL. Its timestamps are ISO 8601 (with T or a space,
 * any offset; none means UTC), which is what PostgreSQL prints; other spellings PostgreSQL would accept are
 * refused rather than guessed.
 */

export type TransformedValue = string | number | null;

interface TransformDefinition {
  /** SQL over a quoted column expression. */
  sql(column: string): string;
  /** The same over a non-NULL text value; throws where PostgreSQL would raise an error. */
  js(value: string): TransformedValue;
}

/**
 * What `trim` strips at both ends: ASCII whitespace. (PostgreSQL's btrim() alone strips only ' ', JavaScript's trim() also Unicode spaces.)
 * Also what a blank key consists of (src/sync/plan.ts, and the models' not-blank check).
 */
export const TRIM_CHARACTERS = ' \t\n\r\f\v';
const TRIM_SQL = TRIM_CHARACTERS.split('').map((ch) => `chr(${ch.charCodeAt(0)})`).join(' || ');
const TRIM_CLASS = `[${[...TRIM_CHARACTERS].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}]`;
const TRIM_JS = new RegExp(`^${TRIM_CLASS}+|${TRIM_CLASS}+$`, 'g');

const NUMERIC = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?\s*$/i;
function numeric(v: string): number {
  if (!NUMERIC.test(v)) throw new Error(`invalid input syntax for type numeric: "${v}"`);
  return Number(v);
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
/** Milliseconds since the epoch of an ISO timestamp; sub-millisecond digits are dropped, like to_char's MS. */
function epochMs(v: string): number {
  const m = TIMESTAMP.exec(v.trim());
  if (!m) throw new Error(`not an ISO 8601 timestamp: "${v}"`);
  const [, day, time = '00:00:00', zone = 'Z'] = m;
  const [hms, frac = ''] = time.split('.');
  const offset = zone.toUpperCase() === 'Z' ? 'Z' : zone.length === 3 ? `${zone}:00` : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const ms = Date.parse(`${day}T${hms!.length === 5 ? `${hms}:00` : hms}.${frac.padEnd(3, '0').slice(0, 3)}${offset}`);
  if (Number.isNaN(ms)) throw new Error(`not a valid timestamp: "${v}"`);
  return ms;
}

/**
 * Case mapping character by character, one character to one, as PostgreSQL's lower()/upper() do in a UTF-8
 * locale: JavaScript alone turns 'ß' into 'SS' and 'İ' into 'i' plus a combining dot. A mapping to several
 * characters keeps the character, unless the rest are combining marks (then the base letter, as PostgreSQL).
 * (A database with the C locale maps only ASCII letters.)
 */
const perCharacter = (map: (ch: string) => string) => (v: string) => [...v].map((ch) => {
  const [first, ...rest] = [...map(ch)];
  if (rest.length === 0) return first;
  return rest.every((r) => /\p{Mn}/u.test(r)) ? first : ch;
}).join('');
const lower = perCharacter((ch) => ch.toLowerCase());
const upper = perCharacter((ch) => ch.toUpperCase());
const text = (c: string) => `${c}::text`;
const timestamp = (c: string) => `${c}::timestamptz`;

export const TRANSFORMS = {
  string: { sql: text, js: (v) => v },
  number: { sql: (c) => `${c}::numeric`, js: numeric },
  // round() on numeric rounds half away from zero (Math.round would send -2 for -2.5) and has no -0.
  integer: { sql: (c) => `round(${c}::numeric)::bigint`, js: (v) => { const n = numeric(v); return Math.sign(n) * Math.round(Math.abs(n)) || 0; } },
  lowercase: { sql: (c) => `lower(${text(c)})`, js: lower },
  uppercase: { sql: (c) => `upper(${text(c)})`, js: upper },
  slug: { sql: (c) => `btrim(regexp_replace(lower(${text(c)}), '[^a-z0-9]+', '_', 'g'), '_')`, js: (v) => lower(v).replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '') },
  trim: { sql: (c) => `btrim(${text(c)}, ${TRIM_SQL})`, js: (v) => v.replace(TRIM_JS, '') },
  date: { sql: (c) => `to_char(${timestamp(c)} AT TIME ZONE 'UTC', 'YYYY-MM-DD')`, js: (v) => new Date(epochMs(v)).toISOString().slice(0, 10) },
  datetime: { sql: (c) => `to_char(${timestamp(c)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`, js: (v) => new Date(epochMs(v)).toISOString() },
  // floor, not the bigint cast's rounding: the same millisecond as datetime's MS for sub-millisecond input.
  epoch_ms: { sql: (c) => `floor(extract(epoch FROM ${timestamp(c)}) * 1000)::bigint`, js: epochMs },
} as const satisfies Record<string, TransformDefinition>;

export type TransformName = keyof typeof TRANSFORMS;
export const TRANSFORM_NAMES = Object.keys(TRANSFORMS) as [TransformName, ...TransformName[]];

/** The SQL expression of `column` after `transform`. */
export function transformSql(column: string, transform: Transform | undefined): string {
  const c = quoteIdent(column);
  if (transform === undefined) return c;
  if (typeof transform === 'object') {
    const whens = Object.entries(transform.map).map(([from, to]) => `WHEN ${quoteLiteral(from)} THEN ${quoteLiteral(to)}`).join(' ');
    return `(CASE ${c}::text ${whens} ELSE ${c}::text END)`;
  }
  return TRANSFORMS[transform].sql(c);
}

/** The value the payload holds for a source value (PostgreSQL's text of it, null for NULL) after `transform`. */
export function transformValue(value: string | null, transform: Transform | undefined): TransformedValue {
  if (value === null) return null;
  if (transform === undefined) return value;
  if (typeof transform === 'object') return Object.hasOwn(transform.map, value) ? transform.map[value]! : value;
  return TRANSFORMS[transform].js(value);
}
