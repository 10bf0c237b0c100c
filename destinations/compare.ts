import type { Payload, ReadBackResult } from './types.ts';

/**
 * Compares what was delivered with what the destination holds now. Destinations hand back values in their
 * own types (HubSpot: strings; CSV: strings; Salesforce: numbers, booleans), so values compare by a
 * normalised text form: numbers by numeric value, empty string and null as the same "empty".
 */
export function normalise(value: unknown): string {
  if (value === null || value === undefined || value === '') return '';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const text = String(value);
  if (/^-?\d+(\.\d+)?$/.test(text.trim())) return String(Number(text));
  return text;
}

export function compareToExpected(expected: Payload, actual: Record<string, unknown>): Pick<ReadBackResult, 'status' | 'actual' | 'driftedFields'> {
  const drifted = Object.keys(expected).filter((k) => normalise(expected[k]) !== normalise(actual[k]));
  const picked = Object.fromEntries(Object.keys(expected).map((k) => [k, (actual[k] ?? null) as Payload[string]]));
  return drifted.length ? { status: 'drifted', actual: picked, driftedFields: drifted } : { status: 'verified', actual: picked };
}
