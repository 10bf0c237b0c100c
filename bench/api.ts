/**
 * bench:api (issue 17) — the API and dashboard against a big ledger: 1,000,000 keys, first one run of receipts
 * and planned items (1M receipts), then ten (10M receipts). In one run it measures
 *   - a record's timeline through the API (HTTP, auth, masking, JSON) against the bare indexed SQL that reads
 *     the same rows (the receipts and items of that key in the mapping's runs): target p95 <= 3x the SQL's p95;
 *   - the overview (/) and a run page (/runs/<id>) at 1M and at 10M receipts: target 10M time <= 1.5x the 1M time.
 * Usage: npm run bench:api [-- <keys> <runs>] (defaults 1000000 10).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import Fastify from 'fastify';
import { withApp } from '../src/app.ts';
import { mountControlPlane } from '../src/api/server.ts';
import { createRootLogger, setRootLogger } from '../src/log.ts';
import { migrate } from '../src/state/migrate.ts';
import { withBenchProject } from './scratch.ts';

const KEYS = Number(process.argv[2] ?? 1_000_000);
const RUNS = Number(process.argv[3] ?? 10);
const SAMPLES = 200;
const TOKEN = 'bench-api-token';
process.env.SEGSYNC_API_TOKEN = TOKEN;
setRootLogger(createRootLogger({ level: 'warn', pretty: false }));

const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)]!;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const key = (i: number) => `u${String(i).padStart(7, '0')}`;

await withBenchProject('api', async ({ dir }) => {
  await writeFile(path.join(dir, 'mappings/bench.yaml'), `name: bench
source:
  model: segments
  key: user_id
destination:
  connection: files
  object: customers
  match_key: customer_id
fields:
  - { to: rfm_segment, from: rfm_segment }
schedule: "0 4 * * *"
`);
  await withApp({ root: dir }, async (app) => {
    const pool = app.warehouse.pool;
    await pool.query(`CREATE TABLE segments (user_id text PRIMARY KEY, rfm_segment text, snapshot_at timestamptz DEFAULT now())`);
    await pool.query(`INSERT INTO segments SELECT 'u' || lpad(i::text, 7, '0'), 'S' || (i % 10) FROM generate_series(1, 1000) i`);
    await migrate(pool, 'segsync');
    const addRun = async (n: number) => {
      const t0 = performance.now();
      const { rows } = await pool.query<{ id: string }>(
        `INSERT INTO segsync.runs (mapping, status, config_hash, destination, planned, outcome, actor_type, actor_id, started_at, planned_at, finished_at, status_at)
         VALUES ('bench', 'partial', 'bench', 'files', $1, $2, 'system', 'bench', now(), now(), now(), now()) RETURNING id`,
        [JSON.stringify({ create: 0, update: KEYS, remove: 0, unchanged: 0, dead: 0 }), JSON.stringify({ delivered: KEYS - Math.floor(KEYS / 1000), failed: Math.floor(KEYS / 1000), deferred: 0, in_doubt: 0 })]);
      const id = Number(rows[0]!.id);
      await pool.query(`INSERT INTO segsync.run_items (run_id, key, op, after, before, payload_hash)
        SELECT $1::bigint, 'u' || lpad(i::text, 7, '0'), 'update', jsonb_build_object('rfm_segment', 'S' || ((i + $1::int) % 10)), jsonb_build_object('rfm_segment', 'S' || ((i + $1::int - 1) % 10)), md5(i::text || $3::text)
        FROM generate_series(1, $2) i`, [id, KEYS, String(id)]);
      // One record in a thousand rejected: a realistic partial run, so the run page has errors to group.
      await pool.query(`INSERT INTO segsync.receipts (run_id, mapping, key, op, status, payload_hash, destination_id, request_id, sent_at, error_code, error_message)
        SELECT $1::bigint, 'bench', 'u' || lpad(i::text, 7, '0'), 'update', CASE WHEN i % 1000 = 0 THEN 'failed' ELSE 'delivered' END, md5(i::text || $3::text), 'd' || i, 'req-' || $3::text || '-' || i, now(),
               CASE WHEN i % 1000 = 0 THEN 'INVALID_VALUE' END, CASE WHEN i % 1000 = 0 THEN 'value rejected' END
        FROM generate_series(1, $2) i`, [id, KEYS, String(id)]);
      await pool.query(`INSERT INTO segsync.outbox (subject, run_id, mapping, from_state, to_state, actor_type, actor_id) VALUES ('run', $1, 'bench', NULL, 'succeeded', 'system', 'bench')`, [id]);
      console.log(`run ${n}: ${KEYS.toLocaleString('en')} items and receipts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return id;
    };
    await pool.query(`INSERT INTO segsync.delivered (mapping, key, payload, payload_hash, destination_id, delivered_at, last_run_id)
      SELECT 'bench', 'u' || lpad(i::text, 7, '0'), jsonb_build_object('rfm_segment', 'S1'), md5(i::text), 'd' || i, now(), 1 FROM generate_series(1, $1) i`, [KEYS]);

    const server = Fastify({ logger: false });
    await mountControlPlane(server, { app: () => app });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const address = server.server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const get = async (p: string) => {
      const t0 = performance.now();
      const res = await fetch(base + p, { headers: { authorization: `Bearer ${TOKEN}` } });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${p}: ${res.status}`);
      return performance.now() - t0;
    };
    const keys = Array.from({ length: SAMPLES }, (_, i) => key(1 + Math.floor(((i * 7919) % SAMPLES) * (KEYS / SAMPLES))));
    const measure = async (lastRun: number) => {
      await pool.query('ANALYZE segsync.runs, segsync.receipts, segsync.run_items, segsync.delivered');
      for (const k of keys.slice(0, 10)) await get(`/api/v1/records/bench/${k}`); // warm
      const api: number[] = [];
      const sql: number[] = [];
      for (const k of keys) {
        api.push(await get(`/api/v1/records/bench/${k}`));
        const t0 = performance.now();
        await pool.query(`SELECT r.* FROM segsync.receipts r WHERE r.run_id IN (SELECT id FROM segsync.runs WHERE mapping = 'bench') AND r.key = $1`, [k]);
        await pool.query(`SELECT i.* FROM segsync.run_items i WHERE i.run_id IN (SELECT id FROM segsync.runs WHERE mapping = 'bench') AND i.key = $1`, [k]);
        await pool.query(`SELECT * FROM segsync.delivered WHERE mapping = 'bench' AND key = $1`, [k]);
        sql.push(performance.now() - t0);
      }
      for (let i = 0; i < 3; i++) { await get('/'); await get(`/runs/${lastRun}`); } // warm
      const overview: number[] = [];
      const run: number[] = [];
      for (let i = 0; i < 15; i++) {
        overview.push(await get('/'));
        run.push(await get(`/runs/${lastRun}`));
      }
      const transitions: number[] = [];
      for (let i = 0; i < 5; i++) transitions.push(await get(`/runs/${lastRun}?fragment=transitions`));
      return { api: p95(api), sql: p95(sql), overview: median(overview), run: median(run), transitions: median(transitions) };
    };
    let last = await addRun(1);
    const small = await measure(last);
    console.log(`at ${KEYS.toLocaleString('en')} receipts: timeline p95 ${small.api.toFixed(1)} ms (bare SQL ${small.sql.toFixed(1)} ms, ${(small.api / small.sql).toFixed(2)}x); overview ${small.overview.toFixed(1)} ms; run page ${small.run.toFixed(1)} ms; its segment transitions (loaded after the page, a pass over the run's ${KEYS.toLocaleString('en')} items) ${small.transitions.toFixed(1)} ms`);
    for (let n = 2; n <= RUNS; n++) last = await addRun(n);
    const big = await measure(last);
    const total = KEYS * RUNS;
    console.log(`at ${total.toLocaleString('en')} receipts: timeline p95 ${big.api.toFixed(1)} ms (bare SQL ${big.sql.toFixed(1)} ms, ${(big.api / big.sql).toFixed(2)}x); overview ${big.overview.toFixed(1)} ms; run page ${big.run.toFixed(1)} ms; its segment transitions ${big.transitions.toFixed(1)} ms`);
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
    console.log(`\ntimeline p95 vs bare SQL at ${total.toLocaleString('en')}: ${(big.api / big.sql).toFixed(2)}x (target <= 3x): ${verdict(big.api / big.sql <= 3)}`);
    console.log(`overview ${RUNS}x ledger: ${(big.overview / small.overview).toFixed(2)}x (target <= 1.5x): ${verdict(big.overview / small.overview <= 1.5)}`);
    console.log(`run page ${RUNS}x ledger: ${(big.run / small.run).toFixed(2)}x (target <= 1.5x): ${verdict(big.run / small.run <= 1.5)}`);
    console.log(`run page transitions ${RUNS}x ledger: ${(big.transitions / small.transitions).toFixed(2)}x (same run size; not a target of the issue, shown for honesty)`);
    await server.close();
  });
});
