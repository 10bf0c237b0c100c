import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cronProblem, previousFire } from '../src/daemon/cron.ts';
import { durationMs, formatMs } from '../src/daemon/duration.ts';

test('previousFire finds the latest fire time strictly before the instant', () => {
  const at = new Date('2026-11-23T10:17:42.500Z');
  assert.equal(previousFire('*/5 * * * * *', at)?.toISOString(), '2026-11-23T10:17:40.000Z');
  assert.equal(previousFire('0 */2 * * *', at)?.toISOString(), '2026-11-23T10:00:00.000Z');
  assert.equal(previousFire('30 3 * * *', at)?.toISOString(), '2026-11-23T03:30:00.000Z');
  assert.equal(previousFire('30 3 * * *', new Date('2026-11-23T03:30:00.000Z'))?.toISOString(), '2026-11-22T03:30:00.000Z');
  // 2026-11-23 is a Monday: the previous Friday 18:00, then the last day of October, then 1 January.
  assert.equal(previousFire('0 18 * * fri', at)?.toISOString(), '2026-11-20T18:00:00.000Z');
  assert.equal(previousFire('0 0 L * *', at)?.toISOString(), '2026-10-31T00:00:00.000Z');
  assert.equal(previousFire('0 0 1 1 *', at)?.toISOString(), '2026-01-01T00:00:00.000Z');
});

test('previousFire reads schedules in the configured time zone', () => {
  // 03:30 in Berlin (UTC+1 in November) is 02:30 UTC.
  assert.equal(previousFire('30 3 * * *', new Date('2026-11-23T10:00:00Z'), 'Europe/Berlin')?.toISOString(), '2026-11-23T02:30:00.000Z');
});

test('cronProblem explains an invalid expression and accepts valid ones', () => {
  assert.equal(cronProblem('*/10 * * * * *'), null);
  assert.equal(cronProblem('0 3 * * mon-fri'), null);
  assert.match(cronProblem('61 * * * *') ?? '', /minute/);
  assert.notEqual(cronProblem('every day'), null);
});

test('durations parse and print', () => {
  assert.equal(durationMs('90s'), 90_000);
  assert.equal(durationMs('26h'), 26 * 3_600_000);
  assert.throws(() => durationMs('5 minutes'), /not a duration/);
  assert.equal(formatMs(95_000), '1m35s');
  assert.equal(formatMs(250), '250ms');
});
