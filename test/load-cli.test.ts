import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { runCli } from './helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';

let db: TestDatabase;
let dir: string;

before(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), 'segsync-load-cli-'));
});
after(async () => {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

async function query<T extends pg.QueryResultRow>(sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

const CSV = 'Id,Customer,PaidAt,Total\n'
  + 'x1,c1,2024-05-01 12:00:00,19.99\n'
  + 'x2,c2,31.12.2024,5\n'
  + 'x3,,2024-05-02,5\n'
  + 'x4,c3,2024-05-03,five\n'
  + 'x5,c3,2024-05-04,7.5\n';
const COLUMNS = ['--columns', 'user_id=Customer,payment_id=Id,payment_date=PaidAt,payment_amount=Total'];

test('segsync load payments: counts, reject file, exit status 3, and a re-load that changes nothing', async () => {
  const file = path.join(dir, 'pay.csv.gz');
  await writeFile(file, gzipSync(CSV));
  const rejects = path.join(dir, 'bad.rejects.csv');
  const r = await runCli(['load', 'payments', file, ...COLUMNS, '--rejects', rejects, '--relation', 'analytics.payments'], { url: db.url });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stdout, /rows read\s+5\b/);
  assert.match(r.stdout, /loaded \(new\)\s+2\b/);
  assert.match(r.stdout, /unchanged duplicates\s+0\b/);
  assert.match(r.stdout, /rejected\s+3\s+-> .*bad\.rejects\.csv/);
  assert.match(r.stderr, /3 row\(s\) rejected, see .*bad\.rejects\.csv/);
  assert.equal(await readFile(rejects, 'utf8'), 'line,reason,Id,Customer,PaidAt,Total\n'
    + '3,"payment_date is not an ISO 8601 timestamp: ""31.12.2024"" (expected e.g. 2024-03-01 or 2024-03-01 08:26:00 or 2024-03-01T08:26:00Z)",x2,c2,31.12.2024,5\n'
    + '4,user_id is empty,x3,,2024-05-02,5\n'
    + '5,"payment_amount is not a decimal number: ""five"" (use a dot for decimals and no thousands separators or currency signs)",x4,c3,2024-05-03,five\n');
  assert.deepEqual(await query('select user_id, payment_id, payment_amount::text as amount from analytics.payments order by payment_id'), [
    { user_id: 'c1', payment_id: 'x1', amount: '19.99' },
    { user_id: 'c3', payment_id: 'x5', amount: '7.5' },
  ]);

  const again = await runCli(['load', 'payments', file, ...COLUMNS, '--rejects', rejects, '--relation', 'analytics.payments', '--json'], { url: db.url });
  assert.equal(again.code, 3);
  const json = JSON.parse(again.stdout) as Record<string, unknown>;
  assert.deepEqual([json.read, json.loaded, json.unchanged, json.rejected], [5, 0, 2, 3]);
  assert.equal((await query<{ n: number }>('select count(*)::int as n from analytics.payments'))[0]!.n, 2);
});

test('segsync load payments: an unknown column is a usage error (exit 2) listing the header; a missing file exits 1', async () => {
  const file = path.join(dir, 'cols.csv');
  await writeFile(file, CSV);
  const r = await runCli(['load', 'payments', file, '--columns', 'user_id=Customer,payment_id=Id'], { url: db.url });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /the header has no column "payment_date"; its columns are: Id, Customer, PaidAt, Total/);
  const missing = await runCli(['load', 'payments', path.join(dir, 'nope.csv')], { url: db.url });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot open .*nope\.csv: no such file/);
  const self = await runCli(['load', 'payments', file, ...COLUMNS, '--rejects', file], { url: db.url });
  assert.equal(self.code, 2);
  assert.match(self.stderr, /--rejects .*cols\.csv is the input file itself/);
  assert.equal(await readFile(file, 'utf8'), CSV, 'the input is untouched');
});

test('segsync load payments on the embedded database (--data-dir), all rows valid: exit 0', async () => {
  const file = path.join(dir, 'ok.csv');
  await writeFile(file, 'user_id,payment_id,payment_date,payment_amount\nu1,e1,2024-01-01,1\nu2,e2,2024-01-02T00:00:00Z,2.5\n');
  const dataDir = path.join(dir, 'pgdata');
  const r = await runCli(['load', 'payments', file, '--json'], { dataDir });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { file, relation: 'public.fact_payments', read: 2, loaded: 2, unchanged: 0, rejected: 0, rejectsPath: null, committed: true });
  const again = await runCli(['load', 'payments', file, '--json', '--strict'], { dataDir });
  assert.equal(again.code, 0, again.stderr);
  assert.equal((JSON.parse(again.stdout) as { unchanged: number }).unchanged, 2);
});

test('every load command has true --help', async () => {
  const p = await runCli(['load', 'payments', '--help'], {});
  assert.equal(p.code, 0);
  assert.match(p.stdout, /--columns <map>/);
  assert.match(p.stdout, /By default the valid rows ARE loaded; with --strict nothing is loaded/);
  const o = await runCli(['load', 'online-retail', '--help'], {});
  assert.match(o.stdout, /18,532 payments from 4,338 customers, total 8,911,407\.904/);
});
