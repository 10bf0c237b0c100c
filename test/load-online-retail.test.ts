import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { loadPaymentsFile } from '../src/load/load-payments.ts';
import { loadOnlineRetail } from '../src/load/online-retail.ts';
import { parseRelation } from '../src/load/payments-table.ts';
import { runCli } from './helpers/cli.ts';
import { createTestDatabase, freshWarehouse, WAREHOUSE_KINDS } from './helpers/pg.ts';
import { fullUciFile, UCI_EXCERPT, UCI_PAYMENTS } from './helpers/uci.ts';

/** The full raw file is not shipped (data/uci/README.md): its tests run when it is given, and say so when skipped. */
const FULL = fullUciFile();

const EXPECTED_FILTERED = { 'no CustomerID': 135_080, 'cancellation (InvoiceNo starts with C)': 8_905, 'Quantity <= 0': 0, 'UnitPrice <= 0': 40 };

test('the file SEGSYNC_ONLINE_RETAIL names exists', { skip: !FULL.named && 'SEGSYNC_ONLINE_RETAIL is not set' }, () => {
  assert.equal(FULL.skip, false, FULL.skip || '');
});

for (const kind of WAREHOUSE_KINDS) {
  describe(`UCI Online Retail staging (${kind})`, () => {
    let w: Awaited<ReturnType<typeof freshWarehouse>>;
    let dir: string;
    before(async () => {
      w = await freshWarehouse(kind);
      dir = await mkdtemp(path.join(tmpdir(), 'segsync-uci-'));
    });
    after(async () => {
      await w.cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    test('the full file stages to 18,532 payments from 4,338 customers, total 8,911,407.904, exactly the shipped data/uci payments; a re-load changes nothing', { skip: FULL.skip }, async () => {
      const relation = parseRelation('fact_payments');
      const rejectsPath = path.join(dir, 'uci.rejects.csv');
      const r = await loadOnlineRetail(w.warehouse, { file: FULL.file!, relation, rejectsPath });
      assert.equal(r.read, 541_909);
      assert.deepEqual(r.filtered, EXPECTED_FILTERED);
      assert.deepEqual(r.staged, { payments: 18_532, users: 4_338, total: '8911407.904' });
      assert.deepEqual([r.loaded, r.unchanged, r.rejected], [18_532, 0, 0]);
      const summary = 'select count(*)::int as payments, count(distinct user_id)::int as users, sum(payment_amount)::text as total, min(payment_date) as first, max(payment_date) as last from fact_payments';
      const stored = (await w.warehouse.pool.query(summary)).rows[0];
      assert.deepEqual(stored, { payments: 18_532, users: 4_338, total: '8911407.904', first: new Date('2010-12-01T08:26:00Z'), last: new Date('2011-12-09T12:50:00Z') });
      const first = await w.warehouse.pool.query(`select user_id, payment_date, payment_amount::text as amount from fact_payments where payment_id = '536365'`);
      // 6 x 2.55 + 6 x 3.39 + 8 x 2.75 + 6 x 3.39 + 6 x 3.39 + 2 x 7.65 + 6 x 4.25, exactly.
      assert.deepEqual(first.rows, [{ user_id: '17850', payment_date: new Date('2010-12-01T08:26:00Z'), amount: '139.12' }]);
      const odd = await w.warehouse.pool.query(`select count(*)::int as n from fact_payments where user_id like '%.%' or payment_id like 'C%' or payment_amount <= 0`);
      assert.equal(odd.rows[0].n, 0);
      // The shipped staged payments (what models-uci.test.ts builds from) are what the loader makes of the file.
      const shipped = await loadPaymentsFile(w.warehouse, { file: UCI_PAYMENTS, relation: parseRelation('shipped_payments'), rejectsPath: path.join(dir, 'shipped.rejects.csv') });
      assert.deepEqual([shipped.read, shipped.loaded, shipped.rejected], [18_532, 18_532, 0]);
      const diff = await w.warehouse.pool.query(`select count(*)::int as n from (
        (select user_id, payment_id, payment_date, payment_amount::text from fact_payments except select user_id, payment_id, payment_date, payment_amount::text from shipped_payments)
        union all
        (select user_id, payment_id, payment_date, payment_amount::text from shipped_payments except select user_id, payment_id, payment_date, payment_amount::text from fact_payments)) d`);
      assert.equal(diff.rows[0].n, 0, 'data/uci/online_retail_payments.csv.gz differs from what the loader stages from the full file');

      const again = await loadOnlineRetail(w.warehouse, { file: FULL.file!, relation, rejectsPath });
      assert.deepEqual([again.loaded, again.unchanged, again.rejected], [0, 18_532, 0]);
      assert.deepEqual((await w.warehouse.pool.query(summary)).rows[0], stored);
    });

    test('the shipped excerpt of the raw file (data/uci) stages its 27 kept invoices and counts the rest by reason', async () => {
      const relation = parseRelation(`excerpt_${kind}`);
      const r = await loadOnlineRetail(w.warehouse, { file: UCI_EXCERPT, relation, rejectsPath: path.join(dir, 'excerpt.rejects.csv') });
      // Counted independently of segsync from the excerpt's lines (exact decimals), see data/uci/README.md.
      assert.equal(r.read, 320);
      assert.deepEqual(r.filtered, { 'no CustomerID': 11, 'cancellation (InvoiceNo starts with C)': 9, 'Quantity <= 0': 0, 'UnitPrice <= 0': 1 });
      assert.deepEqual(r.staged, { payments: 27, users: 19, total: '11727.15' });
      assert.deepEqual([r.loaded, r.unchanged, r.rejected, r.rejectsPath], [27, 0, 0, null]);
      const rows = await w.warehouse.pool.query(`select payment_id, user_id, payment_date, payment_amount::text as amount from ${relation.sql}
        where payment_id in ('536365', '536591', '537197') order by payment_id`);
      assert.deepEqual(rows.rows, [
        { payment_id: '536365', user_id: '17850', payment_date: new Date('2010-12-01T08:26:00Z'), amount: '139.12' },
        // 40 lines at 16:57 and 16:58: the earliest.
        { payment_id: '536591', user_id: '14606', payment_date: new Date('2010-12-01T16:57:00Z'), amount: '198.32' },
        // 17 lines, one of them free (UnitPrice 0.0): left out, the other 16 are the payment.
        { payment_id: '537197', user_id: '12647', payment_date: new Date('2010-12-05T14:02:00Z'), amount: '286.50' },
      ]);
      const none = await w.warehouse.pool.query(`select count(*)::int as n from ${relation.sql} where payment_id like 'C%' or payment_id like 'A%' or payment_id in ('536414', '536589', '536596')`);
      assert.equal(none.rows[0].n, 0, 'cancellations, bad-debt adjustments and lines without a CustomerID are not payments');
    });

    test('filtered lines are counted by reason, unreadable lines are rejects, an invoice split across customers is refused whole', async () => {
      const file = path.join(dir, 'small.csv');
      await writeFile(file, 'InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n'
        + '100,A,x,3,2011-01-02 10:00:00,0.1,12345.0,UK\n'      // 2: kept
        + '100,B,x,1,2011-01-02 09:30:00,2.005,12345.0,UK\n'    // 3: kept, earlier
        + '101,A,x,1,2011-01-03 10:00:00,1,,UK\n'               // 4: no customer
        + 'C102,A,x,-1,2011-01-03 10:00:00,1,12345.0,UK\n'      // 5: cancellation
        + '103,A,x,0,2011-01-03 10:00:00,1,12345.0,UK\n'        // 6: quantity 0
        + '104,A,x,1,2011-01-03 10:00:00,0,12345.0,UK\n'        // 7: free
        + '105,A,x,two,2011-01-03 10:00:00,1,12345.0,UK\n'      // 8: unreadable quantity
        + '106,A,x,1,3 Jan 2011,1,12345.0,UK\n'                 // 9: unreadable date
        + '107,A,x,1,2011-01-04 10:00:00,1,111.0,UK\n'          // 10: split invoice
        + '107,B,x,1,2011-01-04 10:00:00,1,222.0,UK\n');        // 11: split invoice
      const relation = parseRelation(`small_${kind}`);
      const r = await loadOnlineRetail(w.warehouse, { file, relation });
      assert.deepEqual(r.filtered, { 'no CustomerID': 1, 'cancellation (InvoiceNo starts with C)': 1, 'Quantity <= 0': 1, 'UnitPrice <= 0': 1 });
      assert.deepEqual([r.read, r.loaded, r.rejected], [10, 1, 4]);
      const rejects = parse(await readFile(r.rejectsPath!, 'utf8'), { columns: true }) as Array<Record<string, string>>;
      assert.deepEqual(rejects.map((x) => [x.line, x.reason]), [
        ['8', 'Quantity is not a decimal number: "two" (use a dot for decimals and no thousands separators or currency signs)'],
        ['9', 'InvoiceDate is not an ISO 8601 timestamp: "3 Jan 2011" (expected e.g. 2024-03-01 or 2024-03-01 08:26:00 or 2024-03-01T08:26:00Z)'],
        ['10', 'invoice 107 has lines for several CustomerIDs (111, 222)'],
        ['11', 'invoice 107 has lines for several CustomerIDs (111, 222)'],
      ]);
      const rows = await w.warehouse.pool.query(`select user_id, payment_id, payment_date, payment_amount::text as amount from ${relation.sql}`);
      assert.deepEqual(rows.rows, [{ user_id: '12345', payment_id: '100', payment_date: new Date('2011-01-02T09:30:00Z'), amount: '2.305' }]);
    });
  });
}

test('segsync load online-retail on the shipped excerpt, as in the README', async () => {
  const db = await createTestDatabase();
  const dir = await mkdtemp(path.join(tmpdir(), 'segsync-uci-cli-'));
  try {
    const r = await runCli(['load', 'online-retail', 'data/uci/online_retail_excerpt.csv', '--rejects', path.join(dir, 'r.csv')], { url: db.url });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /left out: no CustomerID\s+11\n/);
    assert.match(r.stdout, /left out: cancellation \(InvoiceNo starts with C\)\s+9\n/);
    assert.match(r.stdout, /staged\s+27 payments from 19 customers, total 11727\.15/);
    assert.match(r.stdout, /loaded \(new\)\s+27\n/);
    assert.match(r.stdout, /rejected\s+0/);
  } finally {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('segsync load online-retail end to end on PostgreSQL', { skip: FULL.skip }, async () => {
  const db = await createTestDatabase();
  const dir = await mkdtemp(path.join(tmpdir(), 'segsync-uci-cli-'));
  try {
    const r = await runCli(['load', 'online-retail', FULL.file!, '--rejects', path.join(dir, 'r.csv')], { url: db.url });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /left out: no CustomerID\s+135,080/);
    assert.match(r.stdout, /left out: cancellation \(InvoiceNo starts with C\)\s+8,905/);
    assert.match(r.stdout, /staged\s+18,532 payments from 4,338 customers, total 8911407\.904/);
    assert.match(r.stdout, /loaded \(new\)\s+18,532/);
    assert.match(r.stdout, /rejected\s+0/);
  } finally {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
});
