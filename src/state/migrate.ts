import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { withTransaction } from '../db/transaction.ts';
import { SegsyncError } from '../errors.ts';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

let shipped: Promise<Migration[]> | undefined;

/** The migrations this build ships, read from disk once per process (every run and readiness probe asks). */
export function listMigrations(): Promise<Migration[]> {
  shipped ??= readMigrations();
  return shipped;
}

async function readMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(files.map(async (f) => ({ version: Number(f.slice(0, 3)), name: f.replace(/\.sql$/, ''), sql: await readFile(path.join(MIGRATIONS_DIR, f), 'utf8') })));
}

/**
 * Applies the numbered migrations not applied yet, each in its own transaction together with its bookkeeping
 * row. Two processes starting at once serialise on a transaction-scoped advisory lock: the second finds the
 * work done. Returns the versions it applied.
 */
export async function migrate(pool: pg.Pool, schema: string): Promise<number[]> {
  const migrations = await listMigrations();
  return withTransaction(pool, async (client) => {
    const applied: number[] = [];
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`segsync:migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>(`SELECT version FROM ${schema}.migrations`)).rows.map((r) => r.version));
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      try {
        await client.query(m.sql.replaceAll(':schema', schema));
      } catch (err) {
        throw new SegsyncError('MIGRATION_FAILED', `state migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      await client.query(`INSERT INTO ${schema}.migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}

/** The names of the known migrations not applied yet (readiness probes). */
export async function pendingMigrations(pool: pg.Pool, schema: string): Promise<string[]> {
  const all = await listMigrations();
  const { rows } = await pool.query<{ version: number }>(`SELECT version FROM ${schema}.migrations`);
  const done = new Set(rows.map((r) => r.version));
  return all.filter((m) => !done.has(m.version)).map((m) => m.name);
}
