/**
 * bench:embedded — the daily refresh (`segsync models build` then `segsync run`) of SEGSYNC_BENCH_ROWS current
 * customers (default 100,000), through the CLI as a cron job would run it, on the embedded default (PGlite, a
 * data folder) beside a PostgreSQL server, in the same run: the server is the baseline.
 *   day 1: demo-data (2 months), the first models build, the first sync of every customer to files;
 *   day 2: the day's payments (one from every 20th demo user) loaded with `segsync load payments`, the models
 *          rebuilt as of the next day and the sync of what changed.
 * Target (issue 16): the daily refresh (day 2: load + build + sync) under 60 s embedded; printed as a ratio to 60 s and
 * to the server's time.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchMapping, withBenchProject } from './scratch.ts';

const ROWS = Number(process.env.SEGSYNC_BENCH_ROWS ?? 100_000);
const USERS = Math.ceil(ROWS / 0.306);
const END = '2026-01-01T00:00:00Z';
const NEXT = '2026-01-02T00:00:00Z';
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const MAPPING = benchMapping({ source: '{ model: rfm_current_segments, key: user_id }', destination: '{ connection: files, object: customers, match_key: customer_id }', date: true });

function cli(dir: string, args: string[]): Promise<{ secs: number; out: string }> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, CLI, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SEGSYNC_LOG_LEVEL: 'warn', SEGSYNC_DATABASE_URL: '' } });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ secs: (performance.now() - t) / 1000, out }) : reject(new Error(`segsync ${args.join(' ')} exited ${code}: ${out.slice(-500)}`))));
  });
}

async function refresh(dir: string, extra: string[]): Promise<Record<string, number>> {
  const demo = await cli(dir, [...extra, 'demo-data', '--users', String(USERS), '--months', '2', '--seed', '1', '--end', END]);
  const build1 = await cli(dir, [...extra, 'models', 'build', '--as-of', END]);
  const sync1 = await cli(dir, [...extra, 'run', 'bench']);
  // The day's new payments: one from every 20th demo user (about 5% of the population), loaded as a CSV.
  const csv = path.join(dir, 'day2.csv');
  const lines = ['user_id,payment_id,payment_date,payment_amount'];
  for (let i = 0; i < USERS; i += 20) lines.push(`u${String(i + 1).padStart(6, '0')},day2-${i},2026-01-01T12:00:00Z,${(10 + (i % 90)).toFixed(2)}`);
  await writeFile(csv, `${lines.join('\n')}\n`);
  const load2 = await cli(dir, [...extra, 'load', 'payments', csv]);
  const build2 = await cli(dir, [...extra, 'models', 'build', '--as-of', NEXT]);
  const sync2 = await cli(dir, [...extra, 'run', 'bench']);
  const changed = Number(/(\d+) create, (\d+) update/.exec(sync2.out)?.[2] ?? NaN);
  const first = Number(/(\d+) create/.exec(sync1.out)?.[1] ?? NaN);
  return { demo: demo.secs, build1: build1.secs, sync1: sync1.secs, load2: load2.secs, build2: build2.secs, sync2: sync2.secs, first, changed };
}

console.log(`node ${process.version}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ${USERS.toLocaleString()} demo users (about ${ROWS.toLocaleString()} current customers)`);
const server = await withBenchProject('embedded', async ({ dir }) => {
  await writeFile(path.join(dir, 'mappings/bench.yaml'), MAPPING);
  return refresh(dir, []);
});
const dir = await mkdtemp(path.join(tmpdir(), 'segsync-bench-embedded-'));
let embedded: Record<string, number>;
try {
  await mkdir(path.join(dir, 'config'));
  await mkdir(path.join(dir, 'mappings'));
  await writeFile(path.join(dir, 'config/segsync.yaml'), `connections:\n  files:\n    type: file\n    directory: ${path.join(dir, 'out')}\n`);
  await writeFile(path.join(dir, 'mappings/bench.yaml'), MAPPING);
  embedded = await refresh(dir, ['--data-dir', path.join(dir, '.segsync/pgdata')]);
} finally {
  await rm(dir, { recursive: true, force: true });
}
const row = (label: string, k: string) => console.log(`${label.padEnd(34)} ${server[k]!.toFixed(1).padStart(7)} s ${embedded[k]!.toFixed(1).padStart(8)} s ${(embedded[k]! / server[k]!).toFixed(2).padStart(7)}x`);
console.log(`${''.padEnd(34)} ${'server'.padStart(9)} ${'embedded'.padStart(10)} ${'ratio'.padStart(8)}`);
row('demo-data', 'demo');
row('day 1: models build (full)', 'build1');
row(`day 1: first sync (${embedded.first!.toLocaleString()})`, 'sync1');
row('day 2: load the day\'s payments', 'load2');
row('day 2: models build', 'build2');
row(`day 2: sync (${embedded.changed!.toLocaleString()} changed)`, 'sync2');
const daily = (x: Record<string, number>) => x.load2! + x.build2! + x.sync2!;
console.log(`daily refresh (day 2 load + build + sync): server ${daily(server).toFixed(1)} s, embedded ${daily(embedded).toFixed(1)} s = ${(daily(embedded) / daily(server)).toFixed(2)}x the server`);
console.log(`target: embedded daily refresh / 60 s = ${(daily(embedded) / 60).toFixed(2)}x <= 1x: ${daily(embedded) <= 60 ? 'met' : 'MISSED'}`);
