import type { Transform } from '../../src/config/mapping.ts';

/**
 * HubSpot keeps every property value as a string and normalises on write: numbers lose trailing zeros, dates
 * become YYYY-MM-DD, datetimes ISO strings, an empty string clears. These helpers send our values the way
 * HubSpot expects and compare what it gives back by the property's type, so normalisation is not "drift".
 */

export type Value = string | number | boolean | null;

export function toHubSpot(v: Value | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

function dateOnly(s: string): string | undefined {
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return s;
  const ms = /^-?\d+$/.test(s) ? Number(s) : Date.parse(s);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString().slice(0, 10);
}

function instant(s: string): number {
  return /^-?\d+$/.test(s) ? Number(s) : Date.parse(s);
}

/** Whether HubSpot's stored `actual` is what we sent as `expected`, for a property of `type`. */
export function sameValue(expected: Value | undefined, actual: string | null | undefined, type: string | undefined, fieldType?: string): boolean {
  const e = toHubSpot(expected);
  const a = actual ?? '';
  if (e === a) return true;
  if (e === '' || a === '') return false;
  switch (type) {
    case 'number':
      return Number(e) === Number(a);
    case 'date':
      return dateOnly(e) !== undefined && dateOnly(e) === dateOnly(a);
    case 'datetime':
      return !Number.isNaN(instant(e)) && instant(e) === instant(a);
    case 'bool':
      return e.toLowerCase() === a.toLowerCase();
    case 'enumeration':
      if (fieldType === 'checkbox') return [...e.split(';')].sort().join(';') === [...a.split(';')].sort().join(';');
      return false;
    default:
      return false;
  }
}

/**
 * What the engine will send for a source value after a mapping transform. Used to know which enumeration
 * options a segment property needs; must agree with the engine's SQL transforms.
 */
export function applyTransform(value: string, t: Transform | undefined): string {
  if (t === undefined) return value;
  if (typeof t === 'object') return t.map[value] ?? value;
  switch (t) {
    case 'lowercase': return value.toLowerCase();
    case 'uppercase': return value.toUpperCase();
    case 'trim': return value.trim();
    case 'slug': return value.trim().toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
    default: return value;
  }
}
