import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareRecord, compareToExpected, NUMBER_TOLERANCE, sameValue } from '../destinations/compare.ts';
import { kindOf, normaliseValue } from '../destinations/hubspot/values.ts';

/** The one value comparer of every read-back (destinations/compare.ts), rule by rule. */

test('empty: null, undefined and empty text are one value, equal only to each other', () => {
  for (const [e, a] of [[null, ''], ['', undefined], [undefined, null]] as const) assert.ok(sameValue(e, a), `${e} ~ ${a}`);
  for (const [e, a] of [[null, 0], ['', 'x'], [0, ''], [false, null]] as const) assert.ok(!sameValue(e, a), `${e} !~ ${a}`);
});

test('numbers: by value within one relative tolerance, whichever side is text', () => {
  assert.ok(sameValue(10.5, '10.50'));
  assert.ok(sameValue('21', 21));
  assert.ok(sameValue(0.1 + 0.2, 0.3));
  assert.ok(sameValue(1e12, 1e12 * (1 + NUMBER_TOLERANCE / 2)));
  assert.ok(!sameValue(1e12, 1e12 * (1 + NUMBER_TOLERANCE * 10)));
  assert.ok(!sameValue(7, '7.01'));
  assert.ok(!sameValue(7, 'seven'));
  assert.ok(sameValue('7.0', '7', 'number'), 'numeric text compares as number when the destination says so');
  assert.ok(!sameValue('007', '7'), 'but numeric text alone is text: a zip code is not a number');
});

test('dates: the same UTC day, from a date, an ISO datetime with any offset or epoch milliseconds', () => {
  assert.ok(sameValue('2024-03-01', '2024-03-01T00:00:00.000+0000'));
  assert.ok(sameValue('2024-03-01', '1709251200000', 'date'));
  assert.ok(sameValue('2024-03-01', '2024-03-01T18:00:00-05:00'), '23:00 UTC is still the 1st');
  assert.ok(!sameValue('2024-03-01', '2024-03-01T20:00:00-05:00'), '01:00 UTC on the 2nd');
  assert.ok(!sameValue('2024-03-01', '2024-03-02'));
  assert.ok(!sameValue('2024-03-01', 'soon', 'date'));
});

test('datetimes: the same instant, whatever the offset or spelling', () => {
  assert.ok(sameValue('2024-03-01T10:00:00.000Z', '2024-03-01T05:00:00.000-0500'));
  assert.ok(sameValue('2024-03-01T10:00:00.000Z', '2024-03-01 10:00:00+00'));
  assert.ok(sameValue('2024-03-01T10:00:00.000Z', '1709287200000', 'datetime'));
  assert.ok(!sameValue('2024-03-01T10:00:00.000Z', '2024-03-01T10:00:00.001Z'));
});

test('booleans by text, case-insensitively; text exactly', () => {
  assert.ok(sameValue(true, 'true'));
  assert.ok(sameValue('TRUE', true));
  assert.ok(!sameValue(true, 'false'));
  assert.ok(sameValue('True', 'true', 'bool'));
  assert.ok(!sameValue('Champions', 'champions'));
  assert.ok(!sameValue('At Risk', 'At Risk '));
  assert.ok(sameValue(7.5, '7.5', 'text'));
});

test('a destination passes its own kinds and normalisation: HubSpot multi-checkboxes compare as sets', () => {
  const types: Record<string, { type: string; fieldType?: string }> = {
    score: { type: 'number' }, since: { type: 'date' }, tags: { type: 'enumeration', fieldType: 'checkbox' }, zip: { type: 'string' },
  };
  const rules = { kindOf: (f: string) => kindOf(types[f]?.type), normalise: (f: string, v: unknown) => normaliseValue(types[f]?.fieldType, v) };
  const r = compareRecord({ score: 3, since: '2024-03-01', tags: 'a;b', zip: '007', gone: 'x' }, { score: '3.0', since: '1709251200000', tags: 'b;a', zip: '7' }, rules);
  assert.deepEqual(r.driftedFields, ['zip', 'gone']);
  assert.deepEqual(r.actual, { score: '3.0', since: '1709251200000', tags: 'b;a', zip: '7', gone: null });
  assert.deepEqual(compareToExpected({ a: 1 }, { a: '1' }), { status: 'verified', actual: { a: '1' } });
});
