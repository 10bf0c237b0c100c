import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import jsforce from 'jsforce';
import { salesforce } from '../destinations/salesforce/index.ts';
import { SalesforceConnection, SalesforceOptions } from '../destinations/salesforce/config.ts';
import type { Change } from '../destinations/types.ts';
import { Mapping } from '../src/config/mapping.ts';
import { createRootLogger } from '../src/log.ts';

/**
 * `npm run bench:salesforce`: 100k changed contacts to a Salesforce emulator running in its own process,
 * through segsync's Salesforce session in batches of 10,000 (what the engine hands it) -- once over Bulk
 * API 2.0, once over sObject Collections -- and a naive one-record-per-call loop (jsforce single upserts,
 * measured on a sample and extrapolated). Each client runs in a child process so its peak RSS is its own.
 *   BENCH_SF_RECORDS (100000)  BENCH_SF_LOOP_SAMPLE (2000)  BENCH_SF_LATENCY_MS (5, added to every API call)
 */

const N = Number(process.env.BENCH_SF_RECORDS ?? 100_000);
const LOOP_SAMPLE = Math.min(N, Number(process.env.BENCH_SF_LOOP_SAMPLE ?? 2000));
const LATENCY = Number(process.env.BENCH_SF_LATENCY_MS ?? 5);
const BATCH = 10_000;
const SEGMENTS = ['Champions', 'Loyal Customers', 'At Risk', 'Hibernating', 'Lost'];
for (const v of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY']) delete process.env[v];

function change(i: number): Change {
  const key = `C-${String(i).padStart(7, '0')}`;
  return { key, op: 'create', before: null, after: { LastName: `Person ${i}`, RFM_Segment__c: SEGMENTS[i % 5]!, RFM_Recency_Days__c: i % 365, RFM_Monetary__c: (i % 1000) * 1.5 }, payloadHash: String(i), destinationId: null, attempt: 1 };
}

interface Result { scenario: string; records: number; ms: number; delivered: number; maxRssMb: number }

/** Child: one scenario against the emulator at `url`; prints a Result as JSON. */
async function runScenario(scenario: string, url: string, clientId: string, clientSecret: string): Promise<void> {
  const t0 = performance.now();
  let delivered = 0;
  let records = N;
  if (scenario === 'loop') {
    records = LOOP_SAMPLE;
    const conn = new jsforce.Connection({ oauth2: { loginUrl: url, clientId, clientSecret }, version: '62.0' });
    await conn.authorize({ grant_type: 'client_credentials' });
    for (let i = 1; i <= LOOP_SAMPLE; i++) {
      const { key, after } = change(i);
      const r = await conn.sobject('Contact').upsert({ ...after, Customer_Id__c: key }, 'Customer_Id__c');
      if ((r as { success: boolean }).success) delivered += 1;
    }
  } else {
    const mapping = Mapping.parse({
      name: 'bench', source: { model: 'x', key: 'k' }, destination: { connection: 'sf', object: 'Contact', match_key: 'Customer_Id__c' },
      fields: ['LastName', 'RFM_Segment__c', 'RFM_Recency_Days__c', 'RFM_Monetary__c'].map((f) => ({ to: f, from: f })),
    });
    const session = await salesforce.connect({
      connection: SalesforceConnection.parse({ type: 'salesforce', login_url: url, client_id: clientId, client_secret: clientSecret }),
      connectionName: 'sf', mapping, log: createRootLogger({ level: 'warn', pretty: false }), shared: new Map(),
      options: SalesforceOptions.parse({ bulk_threshold: scenario === 'bulk' ? 2000 : 1_000_000, bulk_poll_interval_ms: 250 }),
    });
    await session.check();
    const signal = new AbortController().signal;
    for (let start = 1; start <= N; start += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, N - start + 1) }, (_, k) => change(start + k));
      const res = await session.deliver(batch, signal);
      delivered += res.outcomes.filter((o) => o.status === 'delivered').length;
    }
  }
  const out: Result = { scenario, records, ms: performance.now() - t0, delivered, maxRssMb: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function control(url: string, path: string, method = 'GET'): Promise<{ counts: Record<string, number> }> {
  return (await fetch(`${url}/__emulator/${path}`, { method })).json() as Promise<{ counts: Record<string, number> }>;
}

async function child(args: string[]): Promise<{ proc: ChildProcess; firstLine: string }> {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: proc.stdout! });
  const [firstLine] = await once(rl, 'line') as [string];
  return { proc, firstLine };
}

async function main(): Promise<void> {
  const serve = fileURLToPath(new URL('../test/emulators/salesforce/serve.ts', import.meta.url));
  const emu = await child([serve, '--latency-ms', String(LATENCY)]);
  const { url, clientId, clientSecret } = JSON.parse(emu.firstLine) as { url: string; clientId: string; clientSecret: string };
  const rows: Array<Result & { calls: number }> = [];
  try {
    for (const scenario of ['bulk', 'collections', 'loop']) {
      await control(url, 'reset', 'POST');
      const c = await child([fileURLToPath(import.meta.url), '--scenario', scenario, url, clientId, clientSecret]);
      const r = JSON.parse(c.firstLine) as Result;
      const { counts } = await control(url, 'requests');
      const calls = Object.values(counts).reduce((a, b) => a + b, 0);
      rows.push({ ...r, calls });
      process.stderr.write(`${scenario}: ${JSON.stringify({ ...r, calls, counts })}\n`);
    }
  } finally {
    emu.proc.kill('SIGTERM');
  }
  const per = (r: Result & { calls: number }) => ({ calls: (r.calls / r.records) * N, ms: (r.ms / r.records) * N });
  const bulk = per(rows[0]!);
  const coll = per(rows[1]!);
  const loop = per(rows[2]!);
  console.log(`Salesforce: ${N.toLocaleString('en')} changed contacts, emulator in its own process, +${LATENCY} ms per API call, batches of ${BATCH}`);
  console.log(`| transport | records run | API calls (for ${N.toLocaleString('en')}) | time (for ${N.toLocaleString('en')}) | records/s | peak RSS (client) |`);
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    const p = per(r);
    console.log(`| ${r.scenario} | ${r.records.toLocaleString('en')}${r.records < N ? ' (sample)' : ''} | ${Math.round(p.calls).toLocaleString('en')} | ${(p.ms / 1000).toFixed(1)} s | ${Math.round(r.records / (r.ms / 1000)).toLocaleString('en')} | ${r.maxRssMb.toFixed(0)} MB |`);
  }
  console.log(`ratios: API calls  loop/collections ${(loop.calls / coll.calls).toFixed(0)}x, collections/bulk ${(coll.calls / bulk.calls).toFixed(1)}x, loop/bulk ${(loop.calls / bulk.calls).toFixed(0)}x`);
  console.log(`ratios: time       loop/collections ${(loop.ms / coll.ms).toFixed(1)}x, collections/bulk ${(coll.ms / bulk.ms).toFixed(2)}x, loop/bulk ${(loop.ms / bulk.ms).toFixed(1)}x`);
  // Targets as ratios (issue 16). Salesforce's limit is the org's daily API-call budget, so the minimum is in
  // calls: Collections ceil(N / 200) calls plus one describe; Bulk API 2.0 seven per job of BATCH (create,
  // upload, close, one status poll, three result reads) plus one describe. Against the one-call-per-record loop:
  // at least 100x fewer calls over Collections (200 a call), 1,000x over Bulk.
  const collMin = Math.ceil(N / 200) + 1;
  const bulkMin = Math.ceil(N / BATCH) * 7 + 1;
  const t = (label: string, v: number, ok: boolean, want: string) => console.log(`targets: ${label} ${v.toFixed(2)}x ${want}: ${ok ? 'met' : 'MISSED'}`);
  t('collections calls / minimum', coll.calls / collMin, coll.calls / collMin <= 1.1, '<= 1.10x');
  t('bulk calls / minimum       ', bulk.calls / bulkMin, bulk.calls / bulkMin <= 1.1, '<= 1.10x');
  t('loop calls / collections   ', loop.calls / coll.calls, loop.calls / coll.calls >= 100, '>= 100x');
  t('loop calls / bulk          ', loop.calls / bulk.calls, loop.calls / bulk.calls >= 1000, '>= 1000x');
  const lost = rows.filter((r) => r.delivered !== r.records);
  if (lost.length) { console.error(`not every record was delivered: ${JSON.stringify(lost)}`); process.exitCode = 1; }
}

const at = process.argv.indexOf('--scenario');
if (at > 0) await runScenario(process.argv[at + 1]!, process.argv[at + 2]!, process.argv[at + 3]!, process.argv[at + 4]!);
else await main();
