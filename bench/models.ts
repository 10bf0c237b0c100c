/**
 * bench:models — the seed's history SQL (PARTITION BY fixed) against segsync's model builds, on one
 * generated data set, in one run, on a real PostgreSQL.
 *
 *   npm run bench:models
 *   BENCH_PAYMENTS=1200000 BENCH_USERS=100000 npm run bench:models
 *
 * Creates its own database on the server at SEGSYNC_BENCH_DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres) and drops it at the end.
 *
 * Data: BENCH_PAYMENTS payments of BENCH_USERS users over 24 months (2024-01 .. 2025-12), generated in SQL
 * from hashes of the row number (deterministic, no random()): skewed frequency (a few users pay often), users
 * starting at different times and churning, amounts skewed (many small, a few large). The first 23 months are loaded and built; then the
 * 24th month arrives and the timings are taken at as-of 2026-01-01 (a monthly refresh at the month start):
 *   baseline     bench/seed_baseline.sql as CREATE TABLE AS (the post's P x M join), once with the server's
 *                defaults (as dbt runs it) and once with segsync's build settings (jit off, work_mem 64MB)
 *   full         segsync models build --full-refresh (into its own schema)
 *   incremental  segsync models build after the new month (recomputes the 2026-01-01 snapshot)
 *   next         a refresh four days later with no new payments (recomputes the as-of snapshot only)
 * and checks that incremental, full and baseline give the same rows.
 */
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openWarehouse } from '../src/db/warehouse.ts';
import { createRootLogger } from '../src/log.ts';
import { buildModels, renderModel, type BuildSummary } from '../src/models/index.ts';

const ADMIN_URL = process.env.SEGSYNC_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PAYMENTS = Number(process.env.BENCH_PAYMENTS ?? 1_200_000);
const USERS = Number(process.env.BENCH_USERS ?? 100_000);
const FIRST_AS_OF = '2025-12-01T00:00:00Z';
const AS_OF = '2026-01-01T00:00:00Z';
const NEXT_AS_OF = '2026-01-05T00:00:00Z';
const log = createRootLogger({ level: process.env.SEGSYNC_LOG_LEVEL ?? 'warn', pretty: false });

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function timed<T>(label: string, fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  say(`  ${label.padEnd(44)} ${(ms / 1000).toFixed(2).padStart(8)} s`);
  return { ms, value };
}

/** uniform [0, 1) from a hash of (row, stream): the same numbers on every run and every server. */
const U = (row: string, stream: number) => `((hashint8extended(${row}, ${stream}) & 2147483647)::float8 / 2147483648.0)`;

async function generate(pool: pg.Pool): Promise<void> {
  // Users: a start instant spread over the 24 months (more of them early), and a churn instant after it.
  await pool.query(`CREATE TABLE bench_users AS
    SELECT u AS uid,
           timestamptz '2024-01-01' + (${U('u', 1)} ^ 1.5) * interval '730 days' AS starts,
           LEAST(1.0, 0.15 + ${U('u', 2)} * 1.6) AS stays
      FROM generate_series(1, ${USERS}) AS u`);
  // Payments: the user is skewed towards low ids (heavy payers); the date falls in the user's active span;
  // amounts are exp() of a uniform: many small, a few large.
  await pool.query(`CREATE TABLE bench_all AS
    SELECT 'u' || u.uid AS user_id,
           'p' || i AS payment_id,
           u.starts + (${U('i', 4)} * u.stays) * (timestamptz '2026-01-01' - u.starts) AS payment_date,
           round((exp(${U('i', 6)} * 6.5) + 4)::numeric, 2) AS payment_amount
      FROM generate_series(1, ${PAYMENTS}) AS i
      JOIN bench_users u ON u.uid = 1 + floor(${USERS} * (${U('i', 3)} ^ 2.2))::int`);
  // The shape `segsync load payments` creates: payment_id is the identity.
  await pool.query(`CREATE TABLE fact_payments (user_id text NOT NULL, payment_id text PRIMARY KEY, payment_date timestamptz NOT NULL, payment_amount numeric NOT NULL)`);
  await pool.query(`INSERT INTO fact_payments SELECT * FROM bench_all WHERE payment_date < '2025-12-01'`);
  await pool.query('ANALYZE fact_payments');
}

async function sameRows(pool: pg.Pool, a: string, b: string, columns: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT ((SELECT COUNT(*) FROM (SELECT ${columns} FROM ${a} EXCEPT ALL SELECT ${columns} FROM ${b}) x)
           + (SELECT COUNT(*) FROM (SELECT ${columns} FROM ${b} EXCEPT ALL SELECT ${columns} FROM ${a}) y))::text AS n`);
  return Number(rows[0]?.n ?? -1);
}

async function main(): Promise<void> {
  const name = `segsync_bench_models_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const warehouse = await openWarehouse({ url: url.toString(), log, maxConnections: 2 });
  const pool = warehouse.pool;
  try {
    const server = await pool.query<{ server_version: string }>('SHOW server_version');
    say(`bench:models on PostgreSQL ${server.rows[0]?.server_version}, database ${name}`);
    await timed(`generate ${PAYMENTS.toLocaleString('en')} payments, ${USERS.toLocaleString('en')} users`, () => generate(pool));
    const sizes = await pool.query<{ total: string; first: string; last: string; users: string }>(
      `SELECT COUNT(*)::text AS total, COUNT(*) FILTER (WHERE payment_date < '2025-12-01')::text AS first,
              COUNT(*) FILTER (WHERE payment_date >= '2025-12-01')::text AS last, COUNT(DISTINCT user_id)::text AS users FROM bench_all`);
    const sz = sizes.rows[0]!;
    say(`  data: ${Number(sz.total).toLocaleString('en')} payments of ${Number(sz.users).toLocaleString('en')} users over 24 months; ` +
      `${Number(sz.last).toLocaleString('en')} of them in the 24th month`);

    const build = (schema: string, asOf: string, fullRefresh = false): Promise<BuildSummary> =>
      buildModels(pool, { schema, payments: 'public.fact_payments', asOf: new Date(asOf), fullRefresh, log });

    say('\nbefore the new month (23 months, as-of 2025-12-01):');
    await pool.query('CREATE SCHEMA inc');
    await timed('segsync full build (first build)', () => build('inc', FIRST_AS_OF));

    await pool.query(`INSERT INTO fact_payments SELECT * FROM bench_all WHERE payment_date >= '2025-12-01'`);
    await pool.query('ANALYZE fact_payments');
    say(`\nafter the 24th month arrived (as-of ${AS_OF}):`);
    const inc = await timed('segsync incremental refresh (new month)', () => build('inc', AS_OF));
    const next = await timed(`  next refresh, as-of ${NEXT_AS_OF.slice(0, 10)} (no new payments)`, () => build('inc', NEXT_AS_OF));
    await build('inc', AS_OF); // back to the common as-of instant for the checks

    await pool.query('CREATE SCHEMA full_');
    const full = await timed('segsync full build (--full-refresh)', () => build('full_', AS_OF, true));

    const seedSql = await readFile(new URL('./seed_baseline.sql', import.meta.url), 'utf8');
    await pool.query('CREATE SCHEMA seed');
    // The seed unions the as-of instant with the calendar's months: with as-of on a month start, the calendar
    // ends the month before (or that snapshot would appear twice).
    await pool.query(`CREATE TABLE seed.dim_calendar AS SELECT generate_series(timestamptz '2024-01-01', $1::timestamptz - interval '1 microsecond', interval '1 month') AS date_month`, [AS_OF]);
    const baselineSql = renderModel('seed_baseline', seedSql, { refs: { fact_payments: 'public.fact_payments', dim_calendar: 'seed.dim_calendar' }, vars: { as_of: AS_OF } });
    // The baseline as dbt would run it (server defaults), and with segsync's build settings (jit off,
    // work_mem 64MB) so the comparison is of the SQL, not of the settings.
    const base = await timed('baseline: seed SQL, PARTITION BY fixed (CTAS)', () => pool.query(`CREATE TABLE seed.hist AS ${baselineSql}`));
    const baseTuned = await timed('  same, with segsync\'s session settings', async () => {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        await c.query(`SET LOCAL jit = off`);
        await c.query(`SET LOCAL work_mem = '64MB'`);
        await c.query(`CREATE TABLE seed.hist_tuned AS ${baselineSql}`);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
    });
    say('\nchecks:');
    const cols = 'user_id, snapshot_at, recency, frequency, monetary, recency_percentile, frequency_percentile, monetary_percentile, recency_score, frequency_score, monetary_score, rfm_segment';
    const incVsFull = await sameRows(pool, 'inc.rfm_segments_hist', 'full_.rfm_segments_hist', cols);
    const seedView = `(SELECT user_id, date_month AS snapshot_at, recency, frequency::int AS frequency, monetary, recency_percentile, frequency_percentile,
      monetary_percentile, recency_score, frequency_score, monetary_score, rfm_segment FROM seed.hist) AS s`;
    const fullVsSeed = await sameRows(pool, 'full_.rfm_segments_hist', seedView, cols);
    const histRows = await pool.query<{ n: string }>('SELECT COUNT(*)::text AS n FROM full_.rfm_segments_hist');
    say(`  history rows: ${Number(histRows.rows[0]?.n).toLocaleString('en')} (${full.value.snapshots} snapshots, ${full.value.users.toLocaleString('en')} users now)`);
    say(`  incremental = full: ${incVsFull === 0 ? 'yes' : `NO (${incVsFull} rows differ)`}; full = seed SQL: ${fullVsSeed === 0 ? 'yes' : `NO (${fullVsSeed} rows differ)`}`);
    say(`  incremental recomputed ${inc.value.snapshotsRecomputed} of ${inc.value.snapshots} snapshots; the next refresh ${next.value.snapshotsRecomputed} of ${next.value.snapshots}`);

    say('\nratios (higher = segsync faster; baseline as run by default / with the same session settings):');
    const ratio = (a: number, b: number) => `${(a / b).toFixed(1)}x`;
    say(`  baseline full / segsync full         ${ratio(base.ms, full.ms)} / ${ratio(baseTuned.ms, full.ms)}   (target >= 1x)`);
    say(`  baseline full / segsync incremental  ${ratio(base.ms, inc.ms)} / ${ratio(baseTuned.ms, inc.ms)}   (target >= 10x)`);
    say(`  baseline full / next refresh         ${ratio(base.ms, next.ms)} / ${ratio(baseTuned.ms, next.ms)}`);
    say(`  segsync full / segsync incremental   ${ratio(full.ms, inc.ms)}`);
    if (incVsFull !== 0 || fullVsSeed !== 0) process.exitCode = 1;
  } finally {
    await warehouse.close();
    const c = new pg.Client({ connectionString: ADMIN_URL });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  }
}

await main();
