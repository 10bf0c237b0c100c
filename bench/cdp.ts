/**
 * bench:cdp — SEGSYNC_BENCH_ROWS (default 1,000,000) identify events from PostgreSQL to a local Segment stand-in
 * (test/emulators/cdp, in its own process), in the same run:
 *   segsync   runMapping of a `segment` connection (batches as the destination sizes them), in this process;
 *   baseline  the official @segment/analytics-node client, as its docs recommend (one Analytics instance, default
 *             settings: batches of flushAt=15, `identify` per user, `closeAndFlush()` at the end), in a child
 *             process of its own, reading the same rows with a cursor (pages of 10,000, each page's callbacks
 *             awaited so that its queue stays bounded), on the first SEGSYNC_BENCH_SDK_SAMPLE rows (default
 *             50,000: at its ~600 events/s here 1M would take half an hour); its figures are compared per event.
 * Figures: events/s, requests and bytes the emulator received, peak RSS of each sender; as ratios.
 * Targets (issue 16): segsync at least as fast (events/s ratio >= 1) with at most a tenth of the requests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { withApp } from '../src/app.ts';
import { createRootLogger, setRootLogger } from '../src/log.ts';
import { runMapping } from '../src/sync/run.ts';
import { benchMapping, withBenchProject } from './scratch.ts';

const ROWS = Number(process.env.SEGSYNC_BENCH_ROWS ?? 1_000_000);
// The SDK sends batches of 15, one request at a time per flush: ~600 events/s here, so 1M would take about half
// an hour. It runs on the first SEGSYNC_BENCH_SDK_SAMPLE rows (default 50,000) and its rates are per event.
const SAMPLE = Math.min(ROWS, Number(process.env.SEGSYNC_BENCH_SDK_SAMPLE ?? 50_000));
const WRITE_KEY = 'bench-write-key';
for (const v of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy']) delete process.env[v];

type Stats = { requests: number; bytes: number; received: number; kept: number; duplicates: number };

/** The emulator's own process: prints its URL, then answers `stats` / `reset` lines on stdin with one JSON line. */
async function emulatorMain(): Promise<void> {
  const { startCdpEmulator } = await import('../test/emulators/cdp/server.ts');
  const emu = await startCdpEmulator({ flavour: 'segment', writeKey: WRITE_KEY });
  process.stdout.write(`${JSON.stringify({ url: emu.url })}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'reset') emu.reset();
    const s: Stats = { requests: emu.requests.length, bytes: emu.requests.reduce((n, r) => n + r.bytes, 0), received: emu.received.length, kept: emu.kept.length, duplicates: emu.duplicatesReceived() };
    process.stdout.write(`${JSON.stringify(s)}\n`);
  }
  await emu.close();
}

/** The SDK's own process: every row of `segments` as an identify, the way the client's docs show. */
async function sdkMain(url: string, dbUrl: string, limit: number): Promise<void> {
  const { Analytics } = await import('@segment/analytics-node');
  const analytics = new Analytics({ writeKey: WRITE_KEY, host: url });
  let failed = 0;
  analytics.on('error', () => { failed++; });
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  const t = performance.now();
  const cursor = client.query(new Cursor('SELECT user_id, rfm_segment, recency_score, frequency_score, monetary_score, monetary::float8 AS monetary FROM segments ORDER BY user_id LIMIT $1', [limit]));
  let sent = 0;
  for (;;) {
    const rows = await cursor.read(10_000);
    if (!rows.length) break;
    await Promise.all(rows.map((r) => new Promise<void>((resolve) => analytics.identify({
      userId: r.user_id, traits: { rfm_segment: r.rfm_segment, recency_score: r.recency_score, frequency_score: r.frequency_score, monetary_score: r.monetary_score, monetary: r.monetary },
    }, () => resolve()))));
    sent += rows.length;
  }
  await analytics.closeAndFlush();
  const secs = (performance.now() - t) / 1000;
  await cursor.close();
  await client.end();
  process.stdout.write(`${JSON.stringify({ sent, secs, failed, rss: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
}

function child(args: string[]): { proc: ChildProcess; lines: AsyncIterator<string> } {
  const proc = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  return { proc, lines: createInterface({ input: proc.stdout! })[Symbol.asyncIterator]() };
}
const next = async (it: AsyncIterator<string>) => JSON.parse((await it.next()).value as string);

async function main(): Promise<void> {
  setRootLogger(createRootLogger({ level: 'warn', pretty: false }));
  const emu = child(['--emulator']);
  const { url } = await next(emu.lines) as { url: string };
  const stats = async (line: 'stats' | 'reset'): Promise<Stats> => {
    emu.proc.stdin!.write(`${line}\n`);
    return next(emu.lines) as Promise<Stats>;
  };
  try {
    await withBenchProject('cdp', async ({ dir, url: dbUrl }) => {
      await writeFile(path.join(dir, 'config/segsync.yaml'), `warehouse:\n  url: ${dbUrl}\nconnections:\n  segment:\n    type: segment\n    write_key: \${BENCH_SEGMENT_WRITE_KEY}\n    base_url: ${url}\n`);
      process.env.BENCH_SEGMENT_WRITE_KEY = WRITE_KEY;
      await writeFile(path.join(dir, 'mappings/bench.yaml'), benchMapping({ source: '{ model: segments, key: user_id }', destination: '{ connection: segment, object: identify, match_key: userId }' }));
      await withApp({ root: dir }, async (app) => {
        const segs = ['Champions', 'Loyal Customers', 'Potential Loyalists', 'New Customers', 'Promising', 'Need Attention', 'About to Sleep', 'At Risk', 'Cannot Lose Them', 'Hibernating'];
        await app.warehouse.pool.query(`CREATE TABLE segments AS
          SELECT 'u' || lpad(i::text, 8, '0') AS user_id, ($1::text[])[1 + ((i::bigint * 7919) % 10)::int] AS rfm_segment,
                 1 + i % 5 AS recency_score, 1 + (i / 5) % 5 AS frequency_score, 1 + (i / 25) % 5 AS monetary_score, round((i % 100000) * 1.37, 2) AS monetary
          FROM generate_series(1, $2::int) i`, [segs, ROWS]);
        await app.warehouse.pool.query('ALTER TABLE segments ADD PRIMARY KEY (user_id)');
        console.log(`node ${process.version}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ${ROWS.toLocaleString()} identifies to the Segment emulator at ${url}`);

        // the baseline first: the SDK in its own process
        await stats('reset');
        const sdk = child(['--sdk', url, dbUrl, String(SAMPLE)]);
        const b = await next(sdk.lines) as { sent: number; secs: number; failed: number; rss: number };
        await once(sdk.proc, 'close');
        const bs = await stats('stats');
        console.log(`analytics-node: ${b.sent.toLocaleString()}${b.sent < ROWS ? ' (sample)' : ''} identifies in ${b.secs.toFixed(1)} s = ${Math.round(b.sent / b.secs).toLocaleString()} events/s; ${bs.requests.toLocaleString()} requests, ${(bs.bytes / 1e6).toFixed(1)} MB; kept ${bs.kept.toLocaleString()}; errors ${b.failed}; peak RSS ${b.rss} MB`);

        await stats('reset');
        const t = performance.now();
        const r = await runMapping(app, 'bench');
        const secs = (performance.now() - t) / 1000;
        const ss = await stats('stats');
        const rss = Math.round(process.resourceUsage().maxRSS / 1024);
        console.log(`segsync:        ${r.counts.delivered.toLocaleString()} identifies in ${secs.toFixed(1)} s = ${Math.round(r.counts.delivered / secs).toLocaleString()} events/s (plan, ledger and receipts included); ${ss.requests.toLocaleString()} requests, ${(ss.bytes / 1e6).toFixed(1)} MB; kept ${ss.kept.toLocaleString()}; status ${r.status}; peak RSS ${rss} MB`);
        console.log('');
        const speed = (r.counts.delivered / secs) / (b.sent / b.secs);
        // per event: the SDK ran on a sample
        const reqs = (ss.requests / r.counts.delivered) / (bs.requests / b.sent);
        console.log('targets (ratio to analytics-node in this run):');
        console.log(`  events/s segsync / SDK = ${speed.toFixed(2)}x >= 1x: ${speed >= 1 ? 'met' : 'MISSED'}`);
        console.log(`  requests segsync / SDK = ${reqs.toFixed(4)}x <= 0.1x: ${reqs <= 0.1 ? 'met' : 'MISSED'}`);
        console.log(`  bytes    segsync / SDK = ${((ss.bytes / r.counts.delivered) / (bs.bytes / b.sent)).toFixed(2)}x per event; peak RSS segsync / SDK = ${(rss / b.rss).toFixed(2)}x`);
      });
    });
  } finally {
    emu.proc.stdin!.end();
    emu.proc.kill('SIGTERM');
  }
}

if (process.argv[2] === '--emulator') await emulatorMain();
else if (process.argv[2] === '--sdk') await sdkMain(process.argv[3]!, process.argv[4]!, Number(process.argv[5]));
else await main();
