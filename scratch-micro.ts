import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
await c.connect();
const N = 10000;
const keys = Array.from({ length: N }, (_, i) => 'u' + String(i + 1).padStart(8, '0'));
const arr = <T,>(v: T) => Array.from({ length: N }, () => v);
const setup = async (brin: boolean) => c.query(`drop schema if exists mb cascade; create schema mb;
create table mb.run_items (run_id bigint, key text, op text, after jsonb, payload_hash text, destination_id text, primary key (run_id, key));
create table mb.receipts (id bigserial primary key, run_id bigint, mapping text, key text, op text, status text, payload_hash text, destination_id text, created boolean, error_code text, error_message text, attempt int, request_id text, sent_at timestamptz, recorded_at timestamptz default now());
create index on mb.receipts (mapping, key, id desc); ${brin ? 'create index on mb.receipts using brin (run_id)' : 'create index on mb.receipts (run_id, status)'};
create table mb.delivered (mapping text, key text, payload jsonb, payload_hash text, destination_id text, delivered_at timestamptz, last_run_id bigint, removed_at timestamptz, fail_count int not null default 0, failed_hash text, last_error_code text, last_error text, dead_at timestamptz, reconcile_status text, reconciled_at timestamptz, primary key (mapping, key));
create index on mb.delivered (mapping) where fail_count > 0;
insert into mb.run_items select r, 'u'||lpad(i::text,8,'0'), 'create', jsonb_build_object('rfm_segment','Champions','recency_score',i%5,'monetary',i*1.5,'last','2024-01-01'), md5(i::text), null from generate_series(1,10000) i, generate_series(1,6) r;`);
const receiptsInsert = (run: number) => c.query(`INSERT INTO mb.receipts (run_id, mapping, key, op, status, payload_hash, destination_id, created, error_code, error_message, attempt, request_id, sent_at)
  SELECT $1, 'm', u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[], $8::text[], $9::text[], $10::int[], $11::text[], $12::timestamptz[]) AS u(key, op, status, payload_hash, destination_id, created, error_code, error_message, attempt, request_id, sent_at)`,
  [run, keys, arr('create'), arr('delivered'), keys.map((k) => 'h' + k), keys.map((k) => 'file-' + k), arr(null), arr(null), arr(null), arr(1), arr('req'), arr(new Date())]);
const receiptsCopy = async (run: number) => {
  const sent = new Date().toISOString();
  const lines = keys.map((k) => `${run}\tm\t${k}\tcreate\tdelivered\th${k}\tfile-${k}\t\\N\t\\N\t\\N\t1\treq\t${sent}\n`).join('');
  await pipeline(Readable.from([lines]), c.query(copyFrom('COPY mb.receipts (run_id, mapping, key, op, status, payload_hash, destination_id, created, error_code, error_message, attempt, request_id, sent_at) FROM STDIN')));
};
const deliveredUpsert = (run: number) => c.query(`INSERT INTO mb.delivered AS d (mapping, key, payload, payload_hash, destination_id, delivered_at, last_run_id, removed_at, fail_count)
  SELECT 'm', ri.key, ri.after, ri.payload_hash, coalesce(u.destination_id, ri.destination_id), now(), $1, NULL, 0
  FROM unnest($2::text[], $3::text[]) AS u(key, destination_id) JOIN mb.run_items ri ON ri.run_id = $1 AND ri.key = u.key
  ON CONFLICT (mapping, key) DO UPDATE SET payload = EXCLUDED.payload, payload_hash = EXCLUDED.payload_hash, destination_id = coalesce(EXCLUDED.destination_id, d.destination_id),
    delivered_at = EXCLUDED.delivered_at, last_run_id = EXCLUDED.last_run_id, removed_at = EXCLUDED.removed_at, fail_count = 0, failed_hash = NULL, last_error_code = NULL, last_error = NULL, dead_at = NULL, reconcile_status = NULL, reconciled_at = NULL
  WHERE d.last_run_id IS NULL OR d.last_run_id <= EXCLUDED.last_run_id`, [run, keys, keys.map((k) => 'file-' + k)]);
for (const brin of [false, true]) {
  await setup(brin);
  const r: Record<string, number[]> = { insert: [], copy: [], upsertNew: [], upsertExisting: [] };
  for (let run = 1; run <= 3; run++) {
    let t = performance.now(); await receiptsInsert(run); r.insert!.push(performance.now() - t);
    t = performance.now(); await receiptsCopy(run + 3); r.copy!.push(performance.now() - t);
    t = performance.now(); await deliveredUpsert(run); r[run === 1 ? 'upsertNew' : 'upsertExisting']!.push(performance.now() - t);
  }
  console.log(brin ? 'brin ' : 'btree', Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.map((x) => Math.round(x)).join('/')])));
}
await c.query('drop schema mb cascade'); await c.end();
