import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseColumnSpec, resolveColumns } from '../src/load/csv-source.ts';
import { checkId, parseDecimal, parseTimestamp } from '../src/load/values.ts';
import { UsageError } from '../src/errors.ts';

test('timestamps: ISO dates and date-times parse, naive ones become UTC, offsets are kept', () => {
  const ok = (raw: string) => {
    const r = parseTimestamp(raw);
    assert.ok(r.ok, `${raw} should parse`);
    return r.value;
  };
  assert.equal(ok('2024-03-01'), '2024-03-01T00:00:00+00:00');
  assert.equal(ok('2010-12-01 08:26:00'), '2010-12-01T08:26:00+00:00');
  assert.equal(ok('2010-12-01T08:26'), '2010-12-01T08:26:00+00:00');
  assert.equal(ok('2024-02-29T23:59:59.123456Z'), '2024-02-29T23:59:59.123456+00:00');
  assert.equal(ok('2024-03-01T08:00:00+0530'), '2024-03-01T08:00:00+05:30');
  assert.equal(ok('2024-03-01T08:00:00-02'), '2024-03-01T08:00:00-02:00');
  assert.equal(new Date(ok('2024-03-01T08:00:00+02:00')).toISOString(), '2024-03-01T06:00:00.000Z');
});

test('timestamps: impossible or ambiguous values are refused with the value in the reason', () => {
  for (const [raw, want] of [
    ['', /is empty/],
    ['03/04/2024', /is not an ISO 8601 timestamp: "03\/04\/2024"/],
    ['2023-02-29', /2023-02 has no day 29/],
    ['2024-13-01', /no month 13/],
    ['0000-01-01', /no year 0000/],
    ['2024-01-01 24:00:00', /not a real time of day/],
    ['2024-01-01T10:00:00+16:00', /UTC offset out of range/],
    ['yesterday', /not an ISO 8601/],
  ] as const) {
    const r = parseTimestamp(raw);
    assert.equal(r.ok, false, raw);
    if (!r.ok) assert.match(r.reason, want);
  }
});

test('amounts: plain decimals only', () => {
  for (const good of ['12', '-3.50', '0.001', '.5', '1e3', '+7']) assert.deepEqual(parseDecimal(good), { ok: true, value: good });
  for (const bad of ['', '1,50', '$10', 'NaN', 'Infinity', '1.2.3', '1 000', 'abc']) assert.equal(parseDecimal(bad).ok, false, bad);
});

test('ids: empty, NUL and over-long ids are refused', () => {
  assert.equal(checkId('u1'), null);
  assert.equal(checkId(''), 'is empty');
  assert.equal(checkId('a\u0000b'), 'contains a NUL character');
  assert.match(checkId('x'.repeat(1001)) ?? '', /longer than 1000/);
});

test('--columns: targets are checked, unmapped targets keep their own name, header misses list the header', () => {
  const targets = ['user_id', 'payment_id', 'payment_date', 'payment_amount'];
  const map = parseColumnSpec('user_id=CustomerID, payment_id = InvoiceNo', targets);
  assert.deepEqual([...map], [['user_id', 'CustomerID'], ['payment_id', 'InvoiceNo'], ['payment_date', 'payment_date'], ['payment_amount', 'payment_amount']]);
  assert.throws(() => parseColumnSpec('userid=CustomerID', targets), (e: unknown) => e instanceof UsageError && /unknown target column "userid"/.test(e.message) && /user_id, payment_id/.test(e.hint ?? ''));
  assert.throws(() => parseColumnSpec('user_id', targets), /not target=HeaderColumn/);
  assert.throws(() => resolveColumns('f.csv', ['CustomerID', 'InvoiceNo', 'payment_date'], map),
    (e: unknown) => e instanceof UsageError && e.message === 'f.csv: the header has no column "payment_amount"; its columns are: CustomerID, InvoiceNo, payment_date');
  assert.throws(() => resolveColumns('f.csv', ['CustomerID', 'CustomerID', 'InvoiceNo', 'payment_date', 'payment_amount'], map), /names column "CustomerID" 2 times/);
});
