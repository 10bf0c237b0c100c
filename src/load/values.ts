/**
 * Field parsers shared by the loaders. Each returns the value in a form PostgreSQL reads unambiguously, or a
 * reason a person can act on. They never guess: `03/04/2024` is not a date here, `1,50` is not an amount.
 */

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : DAYS[month - 1]!;
}

/**
 * ISO 8601 date or date-time (`2024-03-01`, `2024-03-01 08:26`, `2024-03-01T08:26:00.123+02:00`). A value
 * without an offset is UTC. Returns text with an explicit offset, so the session time zone cannot change it.
 */
export function parseTimestamp(raw: string): Parsed<string> {
  if (raw === '') return { ok: false, reason: 'is empty' };
  const m = TIMESTAMP.exec(raw);
  if (!m) return { ok: false, reason: `is not an ISO 8601 timestamp: "${clip(raw)}" (expected e.g. 2024-03-01 or 2024-03-01 08:26:00 or 2024-03-01T08:26:00Z)` };
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac, zone] = m;
  const year = Number(y), month = Number(mo), day = Number(d);
  if (year < 1) return { ok: false, reason: `is not a real date: "${clip(raw)}" (there is no year 0000)` };
  if (month < 1 || month > 12) return { ok: false, reason: `is not a real date: "${clip(raw)}" (no month ${mo})` };
  if (day < 1 || day > daysInMonth(year, month)) return { ok: false, reason: `is not a real date: "${clip(raw)}" (${y}-${mo} has no day ${d})` };
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return { ok: false, reason: `is not a real time of day: "${clip(raw)}"` };
  let offset = '+00:00';
  if (zone && zone !== 'Z' && zone !== 'z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2)), om = Number(digits.slice(2) || '0');
    if (oh > 15 || om > 59) return { ok: false, reason: `has a UTC offset out of range: "${clip(raw)}"` };
    offset = `${zone[0]}${digits.slice(0, 2)}:${digits.slice(2) || '00'}`;
  }
  return { ok: true, value: `${y}-${mo}-${d}T${h}:${mi}:${s}${frac ? `.${frac}` : ''}${offset}` };
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?$/;

/** A decimal number (`12`, `-3.50`, `1e3`); no thousands separators, currency signs, NaN or Infinity. */
export function parseDecimal(raw: string): Parsed<string> {
  if (raw === '') return { ok: false, reason: 'is empty' };
  if (!NUMBER.test(raw)) return { ok: false, reason: `is not a decimal number: "${clip(raw)}" (use a dot for decimals and no thousands separators or currency signs)` };
  return { ok: true, value: raw };
}

const DECIMAL_COMMA = /^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$/;

/**
 * A decimal written with a comma (European exports: "1.234,56", "-12,5"): dots are thousands separators
 * (groups of three only), the comma the decimal mark. Returned with a dot, as parseDecimal's values.
 */
export function parseDecimalComma(raw: string): Parsed<string> {
  if (raw === '') return { ok: false, reason: 'is empty' };
  if (!DECIMAL_COMMA.test(raw)) return { ok: false, reason: `is not a decimal number with a decimal comma: "${clip(raw)}" (--decimal-comma: 1.234,56 or 1234,56)` };
  return { ok: true, value: raw.replace(/\./g, '').replace(',', '.') };
}

/** Ids are compared exactly, so they may not be empty, hold a NUL, or exceed what a btree index can hold. */
export const MAX_ID_LENGTH = 1000;

/** Why an id is unusable ("is empty", ...), or null. */
export function checkId(raw: string): string | null {
  if (raw === '') return 'is empty';
  if (raw.includes('\u0000')) return 'contains a NUL character';
  if (raw.length > MAX_ID_LENGTH) return `is longer than ${MAX_ID_LENGTH} characters`;
  return null;
}

/** Keeps a bad value recognisable in a reason without copying a whole runaway field. */
export function clip(s: string, max = 60): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
