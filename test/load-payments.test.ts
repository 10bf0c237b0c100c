import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import type { Warehouse } from '../src/db/warehouse.ts';
import { DataError, SegsyncError, UsageError } from '../src/errors.ts';
import { loadPaymentsFile } from '../src/load/load-payments.ts';
import { ensurePaymentsTable, parseRelation } from '../src/load/payments-table.ts';
import { freshWarehouse, WAREHOUSE_KINDS } from './helpers/pg.ts';

const HEADER = 'payment_id,user_id,payment_date,payment_amount\n';

/** Rows in the relation, in a form that compares exactly (timestamps as UTC text, amounts as numeric text). */
async function contents(w: Warehouse, table: string): Promise<string[]> {
  const exists = await w.pool.query(`select to_regclass($1) as r`, [table]);
  if (!exists.rows[0].r) return ['(no table)'];
  const { rows } = await w.pool.query<{ r: string }>(
    `select concat_ws('|', user_id, payment_id, to_char(payment_date at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), payment_amount::text) as r from ${table} order by payment_id`);
  return rows.map((x) => x.r);
}

function bigCsv(rows: number, from = 0): string {
  let s = HEADER;
  for (let i = from; i < from + rows; i++) s += `p${i},u${i % 97},2024-01-${String(1 + (i % 28)).padStart(2, '0')} 10:00:00,${(i % 500) + 0.25}\n`;
  return s;
}

for (const kind of WAREHOUSE_KINDS) {
  describe(`load payments (${kind})`, () => {
    let w: Awaited<ReturnType<typeof freshWarehouse>>;
    let dir: string;
    let n = 0;
    const rel = () => parseRelation(`pay_${++n}`);
    before(async () => {
      w = await freshWarehouse(kind);
      dir = await mkdtemp(path.join(tmpdir(), 'segsync-load-'));
    });
    after(async () => {
      await w.cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    test('bad rows land in the reject file with line and reason; valid rows load; the table is created', async () => {
      const file = path.join(dir, 'mixed.csv');
      await writeFile(file, HEADER
        + 'p1,u1,2024-01-05 10:00:00,10.50\n'
        + 'p2,u1,2024-31-01,3\n'                 // line 3: bad date
        + 'p3,u2,2024-01-06,12 EUR\n'            // line 4: bad amount
        + 'p4,,2024-01-06,4\n'                   // line 5: missing user id
        + ',u3,2024-01-06,4\n'                   // line 6: missing payment id
        + '\n'                                   // line 7: empty, skipped
        + 'p5,"u\n3",2024-01-07T09:00:00+02:00,-2\n' // lines 8-9: a quoted newline; a refund
        + 'p6,u4,2024-01-08\n');                 // line 10: a field short
      const relation = rel();
      const r = await loadPaymentsFile(w.warehouse, { file, relation });
      assert.deepEqual({ read: r.read, loaded: r.loaded, unchanged: r.unchanged, rejected: r.rejected, committed: r.committed }, { read: 7, loaded: 2, unchanged: 0, rejected: 5, committed: true });
      assert.equal(r.rejectsPath, `${file}.rejects.csv`);
      const rejects = parse(await readFile(`${file}.rejects.csv`, 'utf8'), { relax_column_count: true }) as string[][];
      assert.deepEqual(rejects[0], ['line', 'reason', 'payment_id', 'user_id', 'payment_date', 'payment_amount']);
      assert.deepEqual(rejects.slice(1).map((x) => [x[0], x[1]]), [
        ['3', 'payment_date is not a real date: "2024-31-01" (no month 31)'],
        ['4', 'payment_amount is not a decimal number: "12 EUR" (use a dot for decimals and no thousands separators or currency signs)'],
        ['5', 'user_id is empty'],
        ['6', 'payment_id is empty'],
        ['10', 'has 3 field(s), the header has 4'],
      ]);
      assert.deepEqual(rejects[1]!.slice(2), ['p2', 'u1', '2024-31-01', '3'], 'the original fields follow, ready to fix and reload');
      assert.deepEqual(await contents(w.warehouse, relation.sql), ['u1|p1|2024-01-05T10:00:00.000000|10.50', 'u\n3|p5|2024-01-07T07:00:00.000000|-2']);
    });

    test('re-loading the same file changes nothing, and a fixed reject file loads', async () => {
      const file = path.join(dir, 'again.csv');
      await writeFile(file, HEADER + 'a1,u1,2024-02-01,5\na2,u2,2024-02-02,6\na3,u3,2024-02-30,7\n');
      const relation = rel();
      const first = await loadPaymentsFile(w.warehouse, { file, relation });
      assert.deepEqual([first.loaded, first.rejected], [2, 1]);
      const before = await contents(w.warehouse, relation.sql);
      const xmin = await w.warehouse.pool.query(`select payment_id, xmin::text from ${relation.sql} order by 1`);
      const second = await loadPaymentsFile(w.warehouse, { file, relation });
      assert.deepEqual([second.read, second.loaded, second.unchanged, second.rejected], [3, 0, 2, 1]);
      assert.deepEqual(await contents(w.warehouse, relation.sql), before);
      assert.deepEqual((await w.warehouse.pool.query(`select payment_id, xmin::text from ${relation.sql} order by 1`)).rows, xmin.rows, 'no row rewritten');

      const fixed = (await readFile(`${file}.rejects.csv`, 'utf8')).replaceAll('2024-02-30', '2024-02-29');
      const fixedFile = path.join(dir, 'fixed.csv');
      await writeFile(fixedFile, fixed);
      const third = await loadPaymentsFile(w.warehouse, { file: fixedFile, relation });
      assert.deepEqual([third.loaded, third.rejected], [1, 0]);
      await assert.rejects(stat(`${fixedFile}.rejects.csv`), 'no reject file when nothing is rejected');
    });

    test('a payment_id repeated with different values is refused on every line; identical repeats count once', async () => {
      const file = path.join(dir, 'dups.csv');
      await writeFile(file, HEADER + 'd1,u1,2024-03-01,5\nd2,u1,2024-03-02,6\nd1,u1,2024-03-01,5.00\nd2,u9,2024-03-02,6\nd3,u1,2024-03-03,1\n');
      const relation = rel();
      const r = await loadPaymentsFile(w.warehouse, { file, relation });
      assert.deepEqual([r.read, r.loaded, r.unchanged, r.rejected], [5, 2, 1, 2]);
      const rejects = parse(await readFile(r.rejectsPath!, 'utf8'), { columns: true }) as Array<Record<string, string>>;
      assert.deepEqual(rejects.map((x) => [x.line, x.reason, x.user_id]), [
        ['3', 'payment_id d2 appears on lines 3, 5 with different values', 'u1'],
        ['5', 'payment_id d2 appears on lines 3, 5 with different values', 'u9'],
      ]);
      assert.deepEqual(await contents(w.warehouse, relation.sql), ['u1|d1|2024-03-01T00:00:00.000000|5', 'u1|d3|2024-03-03T00:00:00.000000|1']);

      // Already loaded with other values: refused, the stored payment is kept as it was.
      const changed = path.join(dir, 'changed.csv');
      await writeFile(changed, HEADER + 'd1,u1,2024-03-01,7\nd4,u2,2024-03-04,8\n');
      const c = await loadPaymentsFile(w.warehouse, { file: changed, relation });
      assert.deepEqual([c.loaded, c.rejected], [1, 1]);
      const cr = parse(await readFile(c.rejectsPath!, 'utf8'), { columns: true }) as Array<Record<string, string>>;
      assert.equal(cr[0]!.line, '2');
      assert.match(cr[0]!.reason!, new RegExp(`^payment_id d1 is already in ${relation.display} with different values \\(user_id u1, payment_date 2024-03-01 00:00:00\\+00, payment_amount 5\\)$`));
      assert.ok((await contents(w.warehouse, relation.sql)).includes('u1|d1|2024-03-01T00:00:00.000000|5'));
    });

    test('a clean load removes the reject file an earlier load of the same file left', async () => {
      const file = path.join(dir, 'stale.csv');
      await writeFile(file, HEADER + 'st1,u1,2024-01-01,1\nst2,u1,2024-01-0x,1\n');
      const relation = rel();
      assert.equal((await loadPaymentsFile(w.warehouse, { file, relation })).rejected, 1);
      await stat(`${file}.rejects.csv`);
      await writeFile(file, HEADER + 'st1,u1,2024-01-01,1\nst2,u1,2024-01-02,1\n');
      const r = await loadPaymentsFile(w.warehouse, { file, relation });
      assert.deepEqual([r.loaded, r.unchanged, r.rejected, r.rejectsPath], [1, 1, 0, null]);
      await assert.rejects(stat(`${file}.rejects.csv`));
    });

    test('--strict loads nothing when a row is rejected, and still writes the reject file', async () => {
      const file = path.join(dir, 'strict.csv');
      await writeFile(file, HEADER + 's1,u1,2024-01-01,1\ns2,u1,nope,1\n');
      const relation = rel();
      const r = await loadPaymentsFile(w.warehouse, { file, relation, strict: true });
      assert.deepEqual([r.committed, r.loaded, r.rejected], [false, 0, 1]);
      assert.deepEqual(await contents(w.warehouse, relation.sql), ['(no table)'], 'not even the table is created');
      assert.match(await readFile(r.rejectsPath!, 'utf8'), /^line,reason,payment_id/);
    });

    test('a file that breaks midway (corrupt gzip, broken quoting) leaves the table exactly as it was', async () => {
      const relation = rel();
      const good = path.join(dir, 'good.csv.gz');
      await writeFile(good, gzipSync(bigCsv(500)));
      assert.equal((await loadPaymentsFile(w.warehouse, { file: good, relation })).loaded, 500);
      const before = await contents(w.warehouse, relation.sql);

      // Big enough that COPY (or the batches) has taken rows before the break.
      const gz = gzipSync(bigCsv(40_000, 1000));
      const truncated = path.join(dir, 'truncated.csv.gz');
      await writeFile(truncated, gz.subarray(0, Math.floor(gz.length * 0.7)));
      await assert.rejects(loadPaymentsFile(w.warehouse, { file: truncated, relation }), (e: unknown) => {
        assert.ok(e instanceof SegsyncError);
        assert.equal(e.code, 'LOAD_FILE_UNREADABLE');
        assert.match(e.message, /truncated\.csv\.gz \(gzip\) to the end/);
        return true;
      });
      const quoting = path.join(dir, 'quoting.csv');
      await writeFile(quoting, `${bigCsv(40_000, 1000)}p9,"u1"x,2024-01-01,1\n${bigCsv(10, 90_000).slice(HEADER.length)}`);
      await assert.rejects(loadPaymentsFile(w.warehouse, { file: quoting, relation }), (e: unknown) => {
        assert.ok(e instanceof SegsyncError);
        assert.equal(e.code, 'LOAD_CSV_BROKEN');
        assert.match(e.message, /quoting\.csv:40002: broken CSV/);
        return true;
      });
      await assert.rejects(stat(`${quoting}.rejects.csv`), 'no reject file for a load that did not happen');
      assert.deepEqual(await contents(w.warehouse, relation.sql), before);
      // The connection is still good after the aborted COPY.
      assert.equal((await w.warehouse.pool.query('select 1 as one')).rows[0].one, 1);
    });

    test('--columns maps header names; gzip is read by content; an unknown column names the header', async () => {
      const file = path.join(dir, 'mapped.csv.gz');
      await writeFile(file, gzipSync('Id,Customer,PaidAt,Total,Extra\nm1,c1,2024-05-01T12:00:00Z,19.99,x\n'));
      const relation = rel();
      const r = await loadPaymentsFile(w.warehouse, { file, relation, columns: 'user_id=Customer,payment_id=Id,payment_date=PaidAt,payment_amount=Total' });
      assert.equal(r.loaded, 1);
      assert.deepEqual(await contents(w.warehouse, relation.sql), ['c1|m1|2024-05-01T12:00:00.000000|19.99']);
      await assert.rejects(loadPaymentsFile(w.warehouse, { file, relation, columns: 'user_id=Client,payment_id=Id,payment_date=PaidAt,payment_amount=Total' }), (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.message, `${file}: the header has no column "Client" (mapped to user_id); its columns are: Id, Customer, PaidAt, Total, Extra`);
        return true;
      });
    });

    test('another delimiter: fields split on it, conflicting rows are found again on the second read', async () => {
      const file = path.join(dir, 'semi.csv');
      await writeFile(file, 'payment_id;user_id;payment_date;payment_amount\ns1;u1;2024-01-01;1.5\ns1;u2;2024-01-01;1.5\ns2;u,3;2024-01-02;2\n');
      const relation = rel();
      const r = await loadPaymentsFile(w.warehouse, { file, relation, delimiter: ';' });
      assert.deepEqual([r.loaded, r.rejected], [1, 2]);
      const rejects = parse(await readFile(r.rejectsPath!, 'utf8'), { columns: true }) as Array<Record<string, string>>;
      assert.deepEqual(rejects.map((x) => [x.line, x.user_id]), [['2', 'u1'], ['3', 'u2']]);
      assert.deepEqual(await contents(w.warehouse, relation.sql), ['u,3|s2|2024-01-02T00:00:00.000000|2']);
    });

    test('an existing relation without a contract column or identity is an error naming relation and column', async () => {
      await w.warehouse.pool.query('create table odd (user_id text, payment_id text primary key, paid_at timestamptz, payment_amount numeric)');
      await assert.rejects(ensurePaymentsTable(w.warehouse.pool, 'odd'), (e: unknown) => e instanceof DataError && /public\.odd has no column payment_date/.test(e.message));
      await w.warehouse.pool.query('create table noid (user_id text, payment_id text, payment_date timestamptz, payment_amount numeric)');
      await assert.rejects(ensurePaymentsTable(w.warehouse.pool, 'noid'), (e: unknown) => e instanceof DataError && e.code === 'PAYMENTS_NO_IDENTITY');
      await w.warehouse.pool.query('create view v_pay as select * from noid');
      await assert.rejects(ensurePaymentsTable(w.warehouse.pool, 'v_pay'), (e: unknown) => e instanceof DataError && /not a table/.test(e.message));
    });
  });
}
