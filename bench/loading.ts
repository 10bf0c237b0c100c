/**
 * Loading throughput on a real PostgreSQL: demo data generation, demo-data COPY (replace and append one month)
 * and `load payments` of a gzip CSV of the same rows (first load and an all-unchanged re-load), with the
 * process's peak memory to show the loads stream. Uses a fresh database on SEGSYNC_TEST_ADMIN_URL's server.
 *   npm run bench:loading            (BENCH_USERS=165000 by default: about 1M payments over 24 months)
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { from as copyFrom } from 'pg-copy-streams';
import { openWarehouse } from '../src/db/warehouse.ts';
import { addUtcMonths, demoPayments } from '../src/demo/generate.ts';
import { loadDemoPayments } from '../src/demo/load.ts';
import { loadPaymentsFile } from '../src/load/load-payments.ts';
import { parseRelation } from '../src/load/payments-table.ts';
import { createTestDatabase, testLog } from '../test/helpers/pg.ts';

const users = Number(process.env.BENCH_USERS ?? 165_000);
const months = 24;
const seed = 1;
const end = new Date('2025-01-01T00:00:00Z');

async function timed<T>(label: string, fn: () => Promise<T> | T): Promise<{ value: T; seconds: number }> {
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  console.log(`${label.padEnd(44)} ${seconds.toFixed(2).padStart(7)} s`);
  return { value, seconds };
}

const db = await createTestDatabase('segsync_bench');
const dir = await mkdtemp(path.join(tmpdir(), 'segsync-bench-'));
const warehouse = await openWarehouse({ url: db.url, log: testLog });
try {
  const gen = await timed('generate demo payments (no database)', () => {
    let n = 0;
    for (const _ of demoPayments({ users, months, seed, end })) n++;
    return n;
  });
  const payments = gen.value;
  console.log(`  ${payments.toLocaleString('en-US')} payments, ${users.toLocaleString('en-US')} users, ${months} months`);
  const demo = await timed('demo-data: COPY into fact_payments (replace)', () => loadDemoPayments(warehouse, { relation: 'fact_payments', users, months, seed, end }));
  const append = await timed('demo-data: --append one more month', () => loadDemoPayments(warehouse, { relation: 'fact_payments', users, months: months + 1, seed, end: addUtcMonths(end, 1), append: true }));
  console.log(`  appended ${append.value.payments.toLocaleString('en-US')} payments`);

  const file = path.join(dir, 'payments.csv.gz');
  await timed('write the rows as payments.csv.gz', () => pipeline(Readable.from((function* () {
    let chunk = 'user_id,payment_id,payment_date,payment_amount\n';
    for (const p of demoPayments({ users, months, seed, end })) {
      chunk += `${p.user_id},${p.payment_id},${p.payment_date.toISOString()},${p.payment_amount}\n`;
      if (chunk.length > 1 << 20) { yield chunk; chunk = ''; }
    }
    yield chunk;
  })()), createGzip(), createWriteStream(file)));
  console.log(`  ${((await stat(file)).size / 1e6).toFixed(1)} MB gzip`);
  // The baseline (issue 16): the bare COPY of the same file into a table without constraints, no checks.
  const bare = await timed('baseline: bare COPY of the same file', async () => {
    const client = await warehouse.pool.connect();
    try {
      await client.query('CREATE TABLE bare_payments (user_id text, payment_id text, payment_date timestamptz, payment_amount numeric)');
      await pipeline(createReadStream(file), createGunzip(), client.query(copyFrom('COPY bare_payments FROM STDIN (FORMAT csv, HEADER true)')));
    } finally {
      client.release();
    }
  });
  const relation = parseRelation('loaded_payments');
  const first = await timed('load payments (new relation)', () => loadPaymentsFile(warehouse, { file, relation }));
  const again = await timed('load payments again (all unchanged)', () => loadPaymentsFile(warehouse, { file, relation }));
  console.log(`  first: ${first.value.loaded.toLocaleString('en-US')} loaded; again: ${again.value.unchanged.toLocaleString('en-US')} unchanged, ${again.value.loaded} loaded`);
  console.log(`demo-data rows/s: ${Math.round(demo.value.payments / demo.seconds).toLocaleString('en-US')}; load payments rows/s: ${Math.round(payments / first.seconds).toLocaleString('en-US')}`);
  console.log(`append one month vs full demo-data load: ${(demo.seconds / append.seconds).toFixed(1)}x faster`);
  // Targets as ratios to the bare COPY (issue 16): a load checks every field and conflicting rows, and writes
  // the primary key; within 3x of a COPY that does none of it.
  const r = first.seconds / bare.seconds;
  console.log(`target: load payments / bare COPY = ${r.toFixed(2)}x <= 3x: ${r <= 3 ? 'met' : 'MISSED'}; demo-data (generation included) / bare COPY = ${(demo.seconds / bare.seconds).toFixed(2)}x`);
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB (file of ${payments.toLocaleString('en-US')} rows streamed)`);
} finally {
  await warehouse.close();
  await db.drop();
  await rm(dir, { recursive: true, force: true });
}
