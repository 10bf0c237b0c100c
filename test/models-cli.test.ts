import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { parseAsOf } from '../src/cli/commands/models.ts';
import { UsageError } from '../src/errors.ts';
import { createPayments, insertPayments, randomPayments } from './helpers/payments.ts';
import { createTestDatabase, type TestDatabase } from './helpers/pg.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['src/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, SEGSYNC_LOG_LEVEL: 'warn', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('segsync models build (CLI, real Postgres)', () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  before(async () => {
    db = await createTestDatabase();
    env = { SEGSYNC_DATABASE_URL: db.url };
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    await createPayments(pool);
    await insertPayments(pool, randomPayments(5, 80, new Date('2023-01-01T00:00:00Z'), new Date('2023-12-01T00:00:00Z')));
    await pool.end();
  });
  after(() => db.drop());

  test('builds, then builds incrementally, and prints users, snapshots and segment counts', async () => {
    const first = await cli(['models', 'build', '--as-of', '2023-12-01T00:00:00Z'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /models built in public as of 2023-12-01T00:00:00.000Z: full build/);
    assert.match(first.stdout, /customers: 80, snapshots: \d+ \(\d+ recomputed\)/);
    assert.match(first.stdout, /segment\s+customers\s+share/);
    const counts = [...first.stdout.matchAll(/^(?:[A-Z][A-Za-z ]+?)\s{2,}(\d+)\s+[\d.]+%$/gm)].map((m) => Number(m[1]));
    assert.equal(counts.reduce((a, b) => a + b, 0), 80, 'segment counts add up to the users');

    const second = await cli(['models', 'build', '--as-of', '2023-12-20', '--format', 'json'], env);
    assert.equal(second.code, 0, second.stderr);
    const summary = JSON.parse(second.stdout);
    assert.equal(summary.mode, 'incremental');
    assert.equal(summary.snapshotsRecomputed, 1);
    assert.equal(summary.users, 80);
  });

  test('a bad --as-of is a usage error (exit 2) that shows the expected form', async () => {
    const r = await cli(['models', 'build', '--as-of', 'yesterday'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--as-of must be an ISO timestamp such as 2011-12-11/);
  });

  test('a payments relation without a needed column fails with exit 1 naming relation and column', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    await pool.query('ALTER TABLE fact_payments RENAME COLUMN payment_amount TO amount');
    await pool.end();
    const r = await cli(['models', 'build'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /payments relation public\.fact_payments has no column payment_amount/);
  });

  test('--help describes the command', async () => {
    const r = await cli(['models', 'build', '--help'], {});
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--as-of <timestamp>/);
    assert.match(r.stdout, /--full-refresh/);
  });
});

test('--as-of accepts dates, times and offsets, and refuses impossible dates', () => {
  assert.equal(parseAsOf('2011-12-11').toISOString(), '2011-12-11T00:00:00.000Z');
  assert.equal(parseAsOf('2011-12-11 08:30').toISOString(), '2011-12-11T08:30:00.000Z');
  assert.equal(parseAsOf('2011-12-11T08:30:15.25+02:00').toISOString(), '2011-12-11T06:30:15.250Z');
  assert.equal(parseAsOf('2011-12-11T08:30:15Z').toISOString(), '2011-12-11T08:30:15.000Z');
  for (const bad of ['2023-02-30', '2023-13-01', '11/12/2011', '2011-12-11T25:00', 'now', '']) {
    assert.throws(() => parseAsOf(bad), UsageError, bad);
  }
});
