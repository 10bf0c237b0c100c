import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { addUtcMonths, demoPayments, windowStart, type DemoOptions, type DemoPayment } from '../src/demo/generate.ts';
import { loadDemoPayments } from '../src/demo/load.ts';
import { DataError } from '../src/errors.ts';
import { runCli } from './helpers/cli.ts';
import { createTestDatabase, freshWarehouse, WAREHOUSE_KINDS } from './helpers/pg.ts';

const END = new Date('2025-01-01T00:00:00Z');
const key = (p: DemoPayment) => `${p.user_id}|${p.payment_id}|${p.payment_date.toISOString()}|${p.payment_amount}`;
const all = (o: DemoOptions) => [...demoPayments(o)];
const digest = (rows: DemoPayment[]) => createHash('sha256').update(rows.map(key).join('\n')).digest('hex');

test('same seed, same rows; another seed, other rows; no Math.random involved', () => {
  const random = Math.random;
  Math.random = () => { throw new Error('Math.random used'); };
  try {
    const a = all({ users: 500, months: 12, seed: 7, end: END });
    const b = all({ users: 500, months: 12, seed: 7, end: END });
    assert.ok(a.length > 1000);
    assert.equal(digest(a), digest(b));
    assert.notEqual(digest(all({ users: 500, months: 12, seed: 8, end: END })), digest(a));
  } finally {
    Math.random = random;
  }
});

test('one more month (same start) and more users are supersets; the new rows are all in the new month', () => {
  const base = all({ users: 400, months: 12, seed: 3, end: END });
  const nextEnd = addUtcMonths(END, 1);
  assert.equal(windowStart(nextEnd, 13).getTime(), windowStart(END, 12).getTime());
  const longer = all({ users: 400, months: 13, seed: 3, end: nextEnd });
  const longerKeys = new Set(longer.map(key));
  for (const p of base) assert.ok(longerKeys.has(key(p)), `missing ${key(p)}`);
  const baseKeys = new Set(base.map(key));
  const added = longer.filter((p) => !baseKeys.has(key(p)));
  assert.ok(added.length > 50);
  for (const p of added) assert.ok(p.payment_date >= END && p.payment_date < nextEnd, `${key(p)} outside the new month`);

  // A mid-month end: the next window takes the rest of that month too, still a superset.
  const mid = all({ users: 400, months: 3, seed: 3, end: new Date('2024-06-15T00:00:00Z') });
  const midNext = new Set(all({ users: 400, months: 4, seed: 3, end: new Date('2024-07-15T00:00:00Z') }).map(key));
  for (const p of mid) assert.ok(midNext.has(key(p)));

  const more = new Set(all({ users: 600, months: 12, seed: 3, end: END }).map(key));
  for (const p of base) assert.ok(more.has(key(p)));

  const from = new Date('2024-10-10T00:00:00Z');
  assert.deepEqual(all({ users: 400, months: 12, seed: 3, end: END, from }).map(key), base.filter((p) => p.payment_date >= from).map(key));
});

test('the data looks like a shop: skewed frequency, lognormal amounts, churners, newcomers, year-end peaks', () => {
  const months = 24;
  const rows = all({ users: 4000, months, seed: 11, end: END });
  const start = windowStart(END, months);
  const perUser = new Map<string, DemoPayment[]>();
  for (const p of rows) {
    assert.ok(p.payment_date >= start && p.payment_date < END);
    assert.match(p.payment_amount, /^\d+\.\d\d$/);
    assert.ok(Number(p.payment_amount) > 0);
    perUser.set(p.user_id, [...(perUser.get(p.user_id) ?? []), p]);
  }
  assert.equal(new Set(rows.map((p) => p.payment_id)).size, rows.length, 'payment_id is unique');
  const counts = [...perUser.values()].map((ps) => ps.length).sort((a, b) => b - a);
  const top10 = counts.slice(0, Math.ceil(counts.length / 10)).reduce((s, n) => s + n, 0);
  assert.ok(top10 / rows.length > 0.35, `top 10% of customers make ${(100 * top10 / rows.length).toFixed(0)}% of payments`);
  assert.ok(counts.filter((n) => n === 1).length / counts.length > 0.1, 'a fair share buys once');

  const amounts = rows.map((p) => Number(p.payment_amount)).sort((a, b) => a - b);
  const mean = amounts.reduce((s, a) => s + a, 0) / amounts.length;
  const median = amounts[Math.floor(amounts.length / 2)]!;
  assert.ok(mean > median * 1.1, `right-skewed amounts: mean ${mean.toFixed(2)}, median ${median}`);
  assert.ok(amounts.at(-1)! > 10 * median, 'a long tail of large orders');

  const sixMonths = 183 * 24 * 3600 * 1000;
  const users = [...perUser.values()];
  const churned = users.filter((ps) => END.getTime() - ps.at(-1)!.payment_date.getTime() > sixMonths).length / users.length;
  const newcomers = users.filter((ps) => ps[0]!.payment_date.getTime() - start.getTime() > sixMonths).length / users.length;
  assert.ok(churned > 0.15, `churned share ${churned.toFixed(2)}`);
  assert.ok(newcomers > 0.15, `newcomer share ${newcomers.toFixed(2)}`);

  const byMonth = new Array(12).fill(0) as number[];
  for (const p of rows) byMonth[p.payment_date.getUTCMonth()]!++;
  const peak = (byMonth[10]! + byMonth[11]!) / 2;
  const rest = byMonth.slice(1, 9).reduce((s, n) => s + n, 0) / 8;
  assert.ok(peak / rest > 1.3, `Nov/Dec vs Feb-Sep: ${(peak / rest).toFixed(2)}`);
});

test('bad options are refused', () => {
  assert.throws(() => all({ users: 0, months: 1, seed: 1 }), /users must be a positive integer/);
  assert.throws(() => all({ users: 1, months: 0, seed: 1 }), /months must be an integer/);
  assert.throws(() => all({ users: 1, months: 1, seed: -1 }), /seed must be a non-negative integer/);
});

for (const kind of WAREHOUSE_KINDS) {
  describe(`loadDemoPayments (${kind})`, () => {
    let w: Awaited<ReturnType<typeof freshWarehouse>>;
    before(async () => { w = await freshWarehouse(kind); });
    after(async () => { await w.cleanup(); });

    const fingerprint = async (table: string) => (await w.warehouse.pool.query(
      `select count(*)::int as n, md5(string_agg(concat_ws('|', user_id, payment_id, payment_date::text, payment_amount::text), E'\\n' order by payment_id)) as h from ${table} where payment_id like 'demo-%'`)).rows[0];

    test('writes what the generator yields, replaces demo rows, keeps other rows; append adds exactly the new month', async () => {
      const opts = { users: 300, months: 6, seed: 5, end: END };
      await w.warehouse.pool.query(`create table demo_pay (user_id text not null, payment_id text primary key, payment_date timestamptz not null, payment_amount numeric not null)`);
      await w.warehouse.pool.query(`insert into demo_pay values ('real', 'r1', '2024-01-01', 9)`);
      const rows = all(opts);
      const r = await loadDemoPayments(w.warehouse, { ...opts, relation: 'demo_pay' });
      assert.deepEqual(r, { payments: rows.length, users: new Set(rows.map((p) => p.user_id)).size });
      const { rows: sums } = await w.warehouse.pool.query(`select count(*)::int as n, sum(payment_amount)::text as total from demo_pay where payment_id like 'demo-%'`);
      const cents = rows.reduce((s, p) => s + Math.round(Number(p.payment_amount) * 100), 0);
      assert.deepEqual(sums[0], { n: rows.length, total: (cents / 100).toFixed(2) });
      const once = await fingerprint('demo_pay');

      await loadDemoPayments(w.warehouse, { ...opts, relation: 'demo_pay' });
      assert.deepEqual(await fingerprint('demo_pay'), once, 'replacing gives the same rows');
      assert.equal((await w.warehouse.pool.query(`select count(*)::int as n from demo_pay where payment_id = 'r1'`)).rows[0].n, 1, 'non-demo rows untouched');

      const next = { ...opts, months: 7, end: addUtcMonths(END, 1) };
      const appended = await loadDemoPayments(w.warehouse, { ...next, relation: 'demo_pay', append: true });
      const expectedNew = all(next).filter((p) => p.payment_date >= END).length;
      assert.equal(appended.payments, expectedNew);
      const afterAppend = await fingerprint('demo_pay');
      assert.equal((await loadDemoPayments(w.warehouse, { ...next, relation: 'demo_pay', append: true })).payments, 0, 'appending the same window again adds nothing');
      await loadDemoPayments(w.warehouse, { ...next, relation: 'fresh_pay' });
      assert.deepEqual(afterAppend, await fingerprint('fresh_pay'), 'append equals a fresh load of the longer window');

      await assert.rejects(loadDemoPayments(w.warehouse, { ...next, seed: 6, relation: 'demo_pay', append: true }), (e: unknown) => e instanceof DataError && e.code === 'DEMO_SEED_MISMATCH');
    });
  });
}

test('segsync demo-data end to end: deterministic with --end, --append adds a month', async () => {
  const db = await createTestDatabase();
  try {
    const args = ['demo-data', '--users', '200', '--months', '6', '--seed', '9', '--end', '2025-01-01'];
    const r = await runCli(args, { url: db.url });
    assert.equal(r.code, 0, r.stderr);
    const expected = all({ users: 200, months: 6, seed: 9, end: END });
    assert.match(r.stdout, new RegExp(`^wrote ${expected.length.toLocaleString('en-US')} demo payments of [\\d,]+ customers to public\\.fact_payments \\(2024-07-01 to 2025-01-01T00:00:00\\.000Z, seed 9\\)`));
    const a = await runCli(['demo-data', '--users', '200', '--months', '7', '--seed', '9', '--end', '2025-02-01', '--append'], { url: db.url });
    assert.equal(a.code, 0, a.stderr);
    const added = all({ users: 200, months: 7, seed: 9, end: new Date('2025-02-01T00:00:00Z') }).length - expected.length;
    assert.match(a.stdout, new RegExp(`^appended ${added.toLocaleString('en-US')} demo payments`));
    const bad = await runCli(['demo-data', '--users', 'many', '--months', '6'], { url: db.url });
    assert.equal(bad.code, 2); // a usage error, like every other
    assert.match(bad.stderr, /option '--users <n>' argument 'many' is invalid. expected an integer/);
  } finally {
    await db.drop();
  }
});
