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
 *
 * Then both again under retries and a crash: the emulator fails a seeded SEGSYNC_BENCH_FAULT_RATE of requests
 * (default 0.10: half 503s, half connection resets; half of each after it stored the batch, so the sender cannot
 * know whether it landed), and each sender, as a process of its own, is killed with SIGKILL once half of its
 * events are stored, then started again the way its job would be: `segsync run` again (until it exits 0), the
 * SDK script again from the first row (it has no record of what landed), on the first 20,000 rows. Counted from what the emulator kept
 * after its messageId dedup, per user: lost (no identify kept), duplicated (more than one kept: resends under
 * a new messageId, which the CDP cannot drop), and the resends it did drop. Target: segsync exactly once
 * (0 lost, 0 duplicated); the SDK is at-least-once by design and its figures are reported beside.
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
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const FAULT_RATE = Number(process.env.SEGSYNC_BENCH_FAULT_RATE ?? 0.1);
// The SDK's run under faults is killed and started again: on 20,000 rows (about a minute here), not its whole sample.
const FAULT_SAMPLE = Math.min(SAMPLE, 20_000);
const FAULT_SEED = 16;
for (const v of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy']) delete process.env[v];

type Stats = { requests: number; bytes: number; received: number; kept: number; duplicates: number; users: number; faults: number };

/**
 * The emulator's own process: prints its URL, then answers each line on stdin with one JSON line: `reset`
 * (then the stats), `faults` (seeded random faults from now on), `kept` (the count only, cheap to poll), or the
 * stats.
 */
async function emulatorMain(): Promise<void> {
  const { startCdpEmulator } = await import('../test/emulators/cdp/server.ts');
  const emu = await startCdpEmulator({ flavour: 'segment', writeKey: WRITE_KEY });
  process.stdout.write(`${JSON.stringify({ url: emu.url })}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'reset') emu.reset();
    if (line === 'faults') emu.faults.randomly({ seed: FAULT_SEED, rate5xx: FAULT_RATE / 2, rateReset: FAULT_RATE / 2 });
    if (line === 'kept') {
      process.stdout.write(`${JSON.stringify({ kept: emu.kept.length })}\n`);
      continue;
    }
    const s: Stats = {
      requests: emu.requests.length, bytes: emu.requests.reduce((n, r) => n + r.bytes, 0), received: emu.received.length, kept: emu.kept.length,
      duplicates: emu.duplicatesReceived(), users: new Set(emu.kept.map((e) => e.userId)).size, faults: emu.faults.injected.length,
    };
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

/** Resolves with the exit code (null when killed). */
const exited = (proc: ChildProcess): Promise<number | null> =>
  proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve(proc.exitCode) : once(proc, 'close').then(([code]) => code as number | null);
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

        // Under retries and a crash: each sender killed once half its events are stored, then started again.
        console.log('');
        console.log(`under retries and a crash: ${(100 * FAULT_RATE).toFixed(0)}% of requests fail (seeded; 503s and resets, half after the batch was stored); each sender SIGKILLed once at half, then started again`);
        /** Waits until the emulator holds `n` events or the sender ended, then kills it; true when the kill landed. */
        const killAt = async (proc: ChildProcess, n: number): Promise<boolean> => {
          const closed = exited(proc);
          for (;;) {
            if (proc.exitCode !== null || proc.signalCode !== null) return false;
            emu.proc.stdin!.write('kept\n');
            if ((await next(emu.lines) as { kept: number }).kept >= n) return proc.kill('SIGKILL');
            await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 100))]);
          }
        };
        /** Empties the emulator and turns its faults on: the count of faults injected before. */
        const armFaults = async (): Promise<number> => {
          const before = (await stats('reset')).faults;
          emu.proc.stdin!.write('faults\n');
          await next(emu.lines);
          return before;
        };
        const report = (who: string, rows: number, st: Stats, faultsBefore: number, extra: string) => {
          console.log(`  ${who} ${rows.toLocaleString()} users: ${st.requests.toLocaleString()} requests (${st.faults - faultsBefore} faults injected); kept ${st.kept.toLocaleString()} identifies for ${st.users.toLocaleString()} users: lost ${(rows - st.users).toLocaleString()}, duplicated ${(st.kept - st.users).toLocaleString()}; resends dropped by messageId ${st.duplicates.toLocaleString()}; ${extra}`);
          return { lost: rows - st.users, duplicated: st.kept - st.users };
        };

        const sdkFaultsBefore = await armFaults();
        const sdkRuns: string[] = [];
        const first = child(['--sdk', url, dbUrl, String(FAULT_SAMPLE)]);
        sdkRuns.push((await killAt(first.proc, FAULT_SAMPLE / 2)) ? 'killed' : `exit ${await exited(first.proc)}`);
        await exited(first.proc);
        const again = child(['--sdk', url, dbUrl, String(FAULT_SAMPLE)]);
        const b2 = await next(again.lines) as { sent: number; failed: number };
        sdkRuns.push(`exit ${await exited(again.proc)} (${b2.failed} batches given up)`);
        const sdkFault = report('analytics-node', FAULT_SAMPLE, await stats('stats'), sdkFaultsBefore, `runs: ${sdkRuns.join(', ')}`);

        const ourFaultsBefore = await armFaults();
        const ourRuns: string[] = [];
        // A second mapping of the same rows: a state of its own, so every user is sent again under the faults.
        await writeFile(path.join(dir, 'mappings/bench_faults.yaml'), benchMapping({ name: 'bench_faults', source: '{ model: segments, key: user_id }', destination: '{ connection: segment, object: identify, match_key: userId }' }));
        const run = () => spawn(process.execPath, [...process.execArgv, CLI, 'run', 'bench_faults'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SEGSYNC_LOG_LEVEL: 'error' } });
        const firstRun = run();
        ourRuns.push((await killAt(firstRun, ROWS / 2)) ? 'killed' : `exit ${await exited(firstRun)}`);
        await exited(firstRun);
        for (let i = 0; i < 5; i++) {
          const code = await exited(run());
          ourRuns.push(`exit ${code}`);
          if (code === 0) break;
        }
        const ours = report('segsync       ', ROWS, await stats('stats'), ourFaultsBefore, `runs: ${ourRuns.join(', ')}`);
        console.log('');
        console.log('target (exactly once under retries and a crash, as the CDP keeps it):');
        console.log(`  segsync lost ${ours.lost}, duplicated ${ours.duplicated} = 0, 0: ${ours.lost === 0 && ours.duplicated === 0 ? 'met' : 'MISSED'}`);
        console.log(`  analytics-node (at-least-once, for comparison): lost ${sdkFault.lost}, duplicated ${sdkFault.duplicated} of ${FAULT_SAMPLE.toLocaleString()} (${((100 * sdkFault.duplicated) / FAULT_SAMPLE).toFixed(1)}%)`);
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
