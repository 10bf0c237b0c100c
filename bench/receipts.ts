/**
 * bench:receipts — the receipts ledger at a year of daily runs: SEGSYNC_BENCH_RUNS runs (default 365, one a day,
 * backdated over the last year) of SEGSYNC_BENCH_RECEIPTS_PER_RUN receipts each (default 100,000: ~36.5M
 * receipts), written into segsync's own state schema (every migration, receipts partitioned by month) with SQL
 * INSERT ... SELECT (the write path itself is bench:sync's). Then, each against a baseline of the same run:
 *   1. `segsync receipts --key` (findReceipts): one record's history across every run, median of 30 keys;
 *      baseline: one bare primary-key probe of one receipt (the least any lookup costs), times the runs;
 *   2. retention: dropping the oldest month's partition; baseline: DELETE of one run's receipts (rolled back),
 *      times the runs in that month.
 * Targets (issue 16): the history within 2x of one bare probe per run, and in milliseconds; the drop at most a
 * hundredth of the DELETE.
 */
import { loadavg } from 'node:os';
import { withApp } from '../src/app.ts';
import { createRootLogger, setRootLogger } from '../src/log.ts';
import { findReceipts } from '../src/state/find-receipts.ts';
import { migrate } from '../src/state/migrate.ts';
import { withBenchProject } from './scratch.ts';

const RUNS = Number(process.env.SEGSYNC_BENCH_RUNS ?? 365);
const PER_RUN = Number(process.env.SEGSYNC_BENCH_RECEIPTS_PER_RUN ?? 100_000);
setRootLogger(createRootLogger({ level: 'warn', pretty: false }));
const ms = (t: number) => performance.now() - t;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

await withBenchProject('receipts', async ({ dir }) => {
  await withApp({ root: dir }, async (app) => {
    const pool = app.warehouse.pool;
    await migrate(pool, 'segsync');
    console.log(`node ${process.version}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    let t = performance.now();
    for (let i = 0; i < RUNS; i++) {
      const started = new Date(Date.now() - (RUNS - i) * 86_400_000).toISOString();
      const { rows } = await pool.query<{ id: string }>(
        `INSERT INTO segsync.runs (mapping, status, config_hash, destination, started_at, finished_at, actor_type, actor_id)
         VALUES ('bench', 'succeeded', 'h', 'files', $1, $1, 'system', 'bench') RETURNING id`, [started]);
      await pool.query('SELECT segsync.receipts_partition($1)', [started]);
      // ~10% of the customers change a day: each day's receipts are a different slice of 1M keys
      await pool.query(
        `INSERT INTO segsync.receipts (run_id, period, mapping, key, op, status, payload_hash, destination_id, attempt, sent_at, recorded_at)
         SELECT $1::bigint, (date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC'))::date, 'bench', 'u' || lpad(((g * 7919 + $1::bigint * 100003) % 1000000)::text, 7, '0'),
                'update', 'delivered', md5(g::text), 'crm-' || g, 1, $2, $2
         FROM generate_series(1, $3::int) g`, [rows[0]!.id, started, PER_RUN]);
      if (i % 50 === 49) console.log(`  ${(i + 1)} runs written, ${(((i + 1) * PER_RUN) / 1e6).toFixed(1)}M receipts, ${(ms(t) / 1000).toFixed(0)} s`);
    }
    await pool.query('VACUUM ANALYZE segsync.receipts');
    await pool.query('ANALYZE segsync.runs');
    const total = (await pool.query<{ n: string; parts: number; size: string }>(
      `SELECT (SELECT count(*) FROM segsync.receipts)::text AS n,
              (SELECT count(*)::int FROM pg_inherits WHERE inhparent = 'segsync.receipts'::regclass) AS parts,
              pg_size_pretty((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'segsync.receipts'::regclass)) AS size`)).rows[0]!;
    console.log(`receipts: ${Number(total.n).toLocaleString()} in ${total.parts} partitions (${total.size}), written in ${(ms(t) / 1000).toFixed(0)} s`);

    // 1. one record's history, against one bare probe per run
    const keys = Array.from({ length: 30 }, (_, i) => `u${String((i * 33331) % 1000000).padStart(7, '0')}`);
    await findReceipts(pool, 'segsync', { mapping: 'bench', key: keys[0]!, limit: 1000 });
    const lookups: number[] = [];
    let found = 0;
    for (const key of keys) {
      t = performance.now();
      found += (await findReceipts(pool, 'segsync', { mapping: 'bench', key, limit: 1000 })).length;
      lookups.push(ms(t));
    }
    const probe = await pool.query<{ run_id: string; key: string; period: string }>(`SELECT run_id::text, key, period::text FROM segsync.receipts LIMIT 1`);
    const probes: number[] = [];
    for (let i = 0; i < 30; i++) {
      t = performance.now();
      await pool.query('SELECT * FROM segsync.receipts WHERE run_id = $1 AND key = $2 AND period = $3', [probe.rows[0]!.run_id, probe.rows[0]!.key, probe.rows[0]!.period]);
      probes.push(ms(t));
    }
    const lookup = median(lookups);
    const one = median(probes);
    console.log(`receipts --key: median ${lookup.toFixed(1)} ms (max ${Math.max(...lookups).toFixed(1)} ms) for ${RUNS} runs, ${(found / keys.length).toFixed(1)} receipts a key`);
    console.log(`  baseline: one bare primary-key probe ${one.toFixed(2)} ms; x ${RUNS} runs = ${(one * RUNS).toFixed(1)} ms`);

    // 2. retention: drop the oldest month against deleting its rows
    const oldest = (await pool.query<{ name: string; runs: number }>(
      `SELECT c.relname AS name, (SELECT count(DISTINCT run_id)::int FROM segsync.receipts r WHERE r.tableoid = c.oid) AS runs
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'segsync.receipts'::regclass AND c.relname ~ '^receipts_p' ORDER BY c.relname LIMIT 1`)).rows[0]!;
    const runOfIt = (await pool.query<{ id: string }>(`SELECT run_id::text AS id FROM segsync.${oldest.name} LIMIT 1`)).rows[0]!.id;
    const client = await pool.connect();
    let deleteMs: number;
    try {
      await client.query('BEGIN');
      t = performance.now();
      await client.query('DELETE FROM segsync.receipts WHERE run_id = $1', [runOfIt]);
      deleteMs = ms(t);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    t = performance.now();
    await pool.query(`DROP TABLE segsync.${oldest.name}`);
    const dropMs = ms(t);
    console.log(`retention: DROP of ${oldest.name} (${oldest.runs} runs) ${dropMs.toFixed(1)} ms; baseline DELETE of one run's receipts ${deleteMs.toFixed(0)} ms x ${oldest.runs} runs = ${(deleteMs * oldest.runs / 1000).toFixed(1)} s`);
    console.log('');
    console.log('targets (ratio to the baselines above):');
    const r1 = lookup / (one * RUNS);
    console.log(`  receipts --key / (one probe x runs) = ${r1.toFixed(2)}x <= 2x: ${r1 <= 2 ? 'met' : 'MISSED'}; ${lookup.toFixed(1)} ms < 1000 ms: ${lookup < 1000 ? 'met' : 'MISSED'}`);
    const r2 = dropMs / (deleteMs * oldest.runs);
    console.log(`  drop / delete of the month = ${r2.toFixed(5)}x <= 0.01x: ${r2 <= 0.01 ? 'met' : 'MISSED'}`);
  });
});
