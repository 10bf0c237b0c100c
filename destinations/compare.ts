import type { Payload, ReadBackResult } from './types.ts';

/**
 * The one value comparer of every read-back: is what the destination holds now what was delivered? The
 * destinations give values back in their own types (HubSpot: strings; CSV: strings; Salesforce and JSON:
 * numbers, booleans, null), so two values are the same when, in this order:
 *
 * 1. Empty: null, undefined and '' are one "empty" value, and an empty value equals only another empty value
 *    (HubSpot clears a property with '', Salesforce stores '' as null, a CSV cell cannot hold null).
 * 2. The field's kind, when the destination knows it from its schema (`kindOf`), decides:
 *    - number: equal as numbers, within NUMBER_TOLERANCE;
 *    - date: the same UTC day (either side 'YYYY-MM-DD', an ISO datetime or epoch milliseconds);
 *    - datetime: the same instant to the millisecond (ISO text with any offset, or epoch milliseconds);
 *    - bool: the same text, case-insensitively ('true' = true = 'TRUE');
 *    - text: the same text (a number as its shortest JavaScript text).
 * 3. Without a kind, the values say: a JavaScript number on either side compares as number, a boolean as
 *    bool, ISO datetime text on both sides as datetime, date-only text expected as date; anything else as text.
 *    Numeric text is not a number by itself: '007' and '7' differ in a text field.
 *
 * What is particular to one destination (HubSpot's multi-checkbox 'a;b' in any order, say) is passed in as
 * `normalise`, applied to both sides before these rules, never written as another comparer.
 */

export type ValueKind = 'number' | 'date' | 'datetime' | 'bool' | 'text';

/** Relative tolerance for numbers: Salesforce and JSON round-trips may change the last binary digits. */
export const NUMBER_TOLERANCE = 1e-9;

export interface CompareRules {
  /** The field's kind from the destination's schema; undefined: decide by the values (rule 3). */
  kindOf?(field: string): ValueKind | undefined;
  /** Destination-specific normalisation of a value of `field`, applied to expected and actual alike. */
  normalise?(field: string, value: unknown): unknown;
}

const isEmpty = (v: unknown): boolean => v === null || v === undefined || v === '';

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/;
const EPOCH_MS = /^-?\d+$/;

function asNumber(v: unknown): number {
  return typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
}

/** Milliseconds since the epoch: ISO text with any offset (Salesforce writes +0000), or epoch ms. */
function instant(v: unknown): number {
  if (typeof v === 'number') return v;
  const s = String(v).trim();
  if (EPOCH_MS.test(s)) return Number(s);
  if (DATE_ONLY.test(s)) return Date.parse(`${s}T00:00:00Z`);
  if (!ISO_DATETIME.test(s)) return Number.NaN;
  const iso = s.replace(' ', 'T').replace(/([+-]\d{2})(\d{2})$/, '$1:$2').replace(/([+-]\d{2})$/, '$1:00');
  return Date.parse(/(Z|[+-]\d{2}:\d{2})$/i.test(iso) ? iso : `${iso}Z`);
}

function utcDay(v: unknown): string | undefined {
  if (typeof v === 'string' && DATE_ONLY.test(v.trim())) return v.trim();
  const ms = instant(v);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString().slice(0, 10);
}

function sameAs(kind: ValueKind, e: unknown, a: unknown): boolean {
  switch (kind) {
    case 'number': {
      const x = asNumber(e);
      const y = asNumber(a);
      return Number.isFinite(x) && Number.isFinite(y) && Math.abs(x - y) <= NUMBER_TOLERANCE * Math.max(1, Math.abs(x), Math.abs(y));
    }
    case 'date': {
      const d = utcDay(e);
      return d !== undefined && d === utcDay(a);
    }
    case 'datetime': {
      const t = instant(e);
      return !Number.isNaN(t) && t === instant(a);
    }
    case 'bool':
      return String(e).toLowerCase() === String(a).toLowerCase();
    case 'text':
      return String(e) === String(a);
  }
}

function inferredKind(e: unknown, a: unknown): ValueKind {
  if (typeof e === 'number' || typeof a === 'number') return 'number';
  if (typeof e === 'boolean' || typeof a === 'boolean') return 'bool';
  if (typeof e === 'string' && typeof a === 'string') {
    if (ISO_DATETIME.test(e) && ISO_DATETIME.test(a)) return 'datetime';
    if (DATE_ONLY.test(e) && a !== e) return 'date';
  }
  return 'text';
}

/** Whether `actual` (as the destination holds it) is the delivered `expected`, by the rules above. */
export function sameValue(expected: unknown, actual: unknown, kind?: ValueKind): boolean {
  if (isEmpty(expected) || isEmpty(actual)) return isEmpty(expected) && isEmpty(actual);
  if (expected === actual) return true;
  return sameAs(kind ?? inferredKind(expected, actual), expected, actual);
}

/** The delivered payload against the destination's record: the mapped fields' current values and which differ. */
export function compareRecord(expected: Payload, actual: Record<string, unknown>, rules: CompareRules = {}, skip?: (field: string) => boolean): { actual: Payload; driftedFields: string[] } {
  const picked: Payload = {};
  const driftedFields: string[] = [];
  for (const [field, want] of Object.entries(expected)) {
    if (skip?.(field)) continue;
    const got = actual[field];
    picked[field] = (got ?? null) as Payload[string];
    const norm = rules.normalise ? (v: unknown) => rules.normalise!(field, v) : (v: unknown) => v;
    if (!sameValue(norm(want), norm(got), rules.kindOf?.(field))) driftedFields.push(field);
  }
  return { actual: picked, driftedFields };
}

export function compareToExpected(expected: Payload, actual: Record<string, unknown>, rules: CompareRules = {}): Pick<ReadBackResult, 'status' | 'actual' | 'driftedFields'> {
  const { actual: picked, driftedFields } = compareRecord(expected, actual, rules);
  return driftedFields.length ? { status: 'drifted', actual: picked, driftedFields } : { status: 'verified', actual: picked };
}
