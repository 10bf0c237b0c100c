import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

/**
 * A throw-away database on the bench server (SEGSYNC_BENCH_ADMIN_URL, default the local PostgreSQL) and a
 * project folder whose config/segsync.yaml points at it with a `files` connection; `fn` gets both, and both are
 * removed after it, whatever happens.
 */
export async function withBenchProject<T>(name: string, fn: (p: { dir: string; url: string }) => Promise<T>): Promise<T> {
  const adminUrl = process.env.SEGSYNC_BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `segsync_bench_${name}_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const dir = await mkdtemp(path.join(tmpdir(), `segsync-bench-${name}-`));
  try {
    await mkdir(path.join(dir, 'config'));
    await mkdir(path.join(dir, 'mappings'));
    await writeFile(path.join(dir, 'config/segsync.yaml'), `warehouse:\n  url: ${url}\nconnections:\n  files:\n    type: file\n    directory: ${path.join(dir, 'out')}\n`);
    return await fn({ dir, url: url.toString() });
  } finally {
    await rm(dir, { recursive: true, force: true });
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

/**
 * The benches' mapping of RFM scores (one text for bench:sync, bench:embedded and bench:cdp): `source` and
 * `destination` lines as each bench needs them, `name` (default `bench`) for a second mapping, `date` adds the
 * last payment date (file destinations). The benches change many records at once on purpose, so the
 * change-size guardrails are off; their figures are still computed.
 */
export function benchMapping(o: { name?: string; source: string; destination: string; date?: boolean }): string {
  return `name: ${o.name ?? 'bench'}
source: ${o.source}
destination: ${o.destination}
fields:
  - { to: rfm_segment, from: rfm_segment }
  - { to: recency_score, from: recency_score }
  - { to: frequency_score, from: frequency_score }
  - { to: monetary_score, from: monetary_score }
  - { to: monetary, from: monetary, transform: number }
${o.date ? '  - { to: last_payment_date, from: max_payment_date, transform: date }\n' : ''}guardrails: { disable: [changed, distribution, anomaly] }
`;
}
