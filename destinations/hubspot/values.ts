import type { Transform } from '../../src/config/mapping.ts';
import { transformValue } from '../../src/config/transforms.ts';
import type { ValueKind } from '../compare.ts';

/**
 * HubSpot keeps every property value as a string and normalises on write: numbers lose trailing zeros, dates
 * become YYYY-MM-DD, datetimes ISO strings, an empty string clears. These helpers send our values the way
 * HubSpot expects and tell the shared comparer (destinations/compare.ts) how a property's type compares, so
 * HubSpot's normalisation is not "drift".
 */

export type Value = string | number | boolean | null;

export function toHubSpot(v: Value | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

/** How a HubSpot property type compares (destinations/compare.ts); undefined for a property we do not know. */
export function kindOf(type: string | undefined): ValueKind | undefined {
  switch (type) {
    case 'number': return 'number';
    case 'date': return 'date';
    case 'datetime': return 'datetime';
    case 'bool': return 'bool';
    case undefined: return undefined;
    default: return 'text';
  }
}

/**
 * HubSpot's own normalisation before comparing: a multi-checkbox holds its options as 'a;b' in whatever
 * order HubSpot keeps them, so both sides are compared as sorted lists.
 */
export function normaliseValue(fieldType: string | undefined, value: unknown): unknown {
  if (fieldType !== 'checkbox' || typeof value !== 'string') return value;
  return value.split(';').sort().join(';');
}

/**
 * What the engine will send for a source value after a mapping transform (the one transform table,
 * src/config/transforms.ts). Used to know which enumeration options a segment property needs.
 */
export function applyTransform(value: string, t: Transform | undefined): string {
  try {
    return toHubSpot(transformValue(value, t));
  } catch {
    return value; // a transform the value cannot take (number on a segment name) fails the run in SQL, not here
  }
}
