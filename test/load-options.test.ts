import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { runCli } from './helpers/cli.ts';
import { createTestDatabase } from './helpers/pg.ts';

const HEADER = 'user_id,payment_id,payment_date,payment_amount\n';

test('loading: a ";" header suggests --delimiter, --decimal-comma, --refunds skip, and a second data set asks for --append or --replace', async () => {
  const db = await createTestDatabase('segsync_load_options');
  const dir = await mkdtemp(path.join(tmpdir(), 'segsync-load-options-'));
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  const amounts = async () => (await pool.query<{ payment_id: string; payment_amount: string }>('SELECT payment_id, payment_amount::text FROM public.fact_payments ORDER BY payment_id')).rows.map((r) => `${r.payment_id}=${r.payment_amount}`);
  try {
    const eu = path.join(dir, 'eu.csv');
    await writeFile(eu, 'user_id;payment_id;payment_date;payment_amount\nu1;p1;2024-01-02;1.234,56\nu2;p2;2024-01-03;-12,5\nu3;p3;2024-01-04;7\n');
    const wrong = await runCli(['load', 'payments', eu], { url: db.url });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /the header has no column "user_id"; its columns are: user_id;payment_id;payment_date;payment_amount\n\s+hint: the header is one column holding ";": pass --delimiter ";"/);

    const noComma = await runCli(['load', 'payments', eu, '--delimiter', ';', '--rejects', path.join(dir, 'r0.csv'), '--strict'], { url: db.url });
    assert.equal(noComma.code, 3, 'without --decimal-comma "1.234,56" is a reject');
    const ok = await runCli(['load', 'payments', eu, '--delimiter', ';', '--decimal-comma', '--refunds', 'skip', '--json'], { url: db.url });
    assert.equal(ok.code, 0, ok.stderr);
    const r = JSON.parse(ok.stdout) as { loaded: number; refundsSkipped: number };
    assert.deepEqual([r.loaded, r.refundsSkipped], [2, 1]);
    assert.deepEqual(await amounts(), ['p1=1234.56', 'p3=7']);
    assert.equal((await runCli(['load', 'payments', eu, '--refunds', 'maybe'], { url: db.url })).code, 2);

    // The same file again adds nothing: no question. A file with new payments: asked, nothing loaded.
    const again = await runCli(['load', 'payments', eu, '--delimiter', ';', '--decimal-comma', '--refunds', 'skip'], { url: db.url });
    assert.equal(again.code, 0, again.stderr);
    const other = path.join(dir, 'other.csv');
    await writeFile(other, `${HEADER}v1,q1,2011-01-02,10\nv2,q2,2011-01-03,20\n`);
    const asked = await runCli(['load', 'payments', other], { url: db.url });
    assert.equal(asked.code, 2);
    assert.match(asked.stderr, /public\.fact_payments already holds payments and this file adds 2 new one\(s\): nothing was loaded\n\s+hint: a second data set\? --append adds them .*--replace loads this file instead/);
    assert.deepEqual(await amounts(), ['p1=1234.56', 'p3=7'], 'nothing was loaded');
    assert.equal((await runCli(['load', 'payments', other, '--append', '--replace'], { url: db.url })).code, 2);
    const appended = await runCli(['load', 'payments', other, '--append'], { url: db.url });
    assert.equal(appended.code, 0, appended.stderr);
    assert.deepEqual(await amounts(), ['p1=1234.56', 'p3=7', 'q1=10', 'q2=20']);
    const replaced = await runCli(['load', 'payments', other, '--replace'], { url: db.url });
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.deepEqual(await amounts(), ['q1=10', 'q2=20']);
  } finally {
    await pool.end();
    await rm(dir, { recursive: true, force: true });
    await db.drop();
  }
});
