import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { Mapping } from '../config/mapping.ts';
import type { Settings } from '../config/settings.ts';
import { sourceQuery, sourceStatement } from '../sync/source.ts';
import type { SyncEngine } from './sync-port.ts';
import { modelBuiltAt } from '../models/build.ts';

/**
 * How fresh the models are, from the first configured source:
 *   1. `models.dbt_run_results`: dbt's run_results.json; fresh as of its generated_at when every node passed,
 *   2. `models.freshness_sql`: one timestamptz the user computes,
 *   3. max(snapshot_at) of the mapping's own source when it has that column (every RFM model does),
 *      else of the RFM models the daemon builds.
 * A source that cannot answer (no file, SQL error, empty model) is a FreshnessError: the gate then blocks
 * with that reason rather than guessing.
 */

export interface Freshness {
  at: Date | null;
  source: 'dbt' | 'sql' | 'model' | 'build';
  /** Set when the source says the last build failed (dbt nodes in error). */
  failed?: string;
}

export class FreshnessError extends Error {}

export async function modelsFreshness(pool: pg.Pool, settings: Settings, root: string, engine: SyncEngine, mapping?: Mapping): Promise<Freshness> {
  const m = settings.models;
  // freshness: build — the time since the last successful build, whatever the data's as-of (historical data).
  if (mapping?.freshness === 'build') return { at: await modelBuiltAt(pool, m.schema), source: 'build' };
  if (m.dbt_run_results) return dbtFreshness(path.resolve(root, m.dbt_run_results));
  if (m.freshness_sql) {
    let r: pg.QueryResult;
    try {
      r = await pool.query(m.freshness_sql);
    } catch (err) {
      throw new FreshnessError(`models.freshness_sql failed: ${(err as Error).message}`);
    }
    const first = r.rows[0] as Record<string, unknown> | undefined;
    const value = first ? Object.values(first)[0] : null;
    if (value === null || value === undefined) return { at: null, source: 'sql' };
    const at = value instanceof Date ? value : new Date(String(value));
    if (Number.isNaN(at.getTime())) throw new FreshnessError(`models.freshness_sql returned '${String(value)}', not a timestamp`);
    return { at, source: 'sql' };
  }
  if (mapping) {
    const q = sourceQuery(mapping, m.schema);
    let hasSnapshot = false;
    try {
      hasSnapshot = (await pool.query(sourceStatement(`SELECT * FROM ${q.from} LIMIT 0`, q.params))).fields.some((f) => f.name === 'snapshot_at');
    } catch (err) {
      throw new FreshnessError(`cannot read the source of ${mapping.name}: ${(err as Error).message}`);
    }
    if (hasSnapshot) {
      const r = await pool.query<{ at: Date | null }>(sourceStatement(`SELECT max(snapshot_at)::timestamptz AS at FROM ${q.from}`, q.params));
      return { at: r.rows[0]?.at ?? null, source: 'model' };
    }
  }
  return { at: await engine.modelFreshness(pool, m.schema), source: 'model' };
}

interface RunResults {
  metadata?: { generated_at?: string };
  results?: Array<{ unique_id?: string; status?: string }>;
}

async function dbtFreshness(file: string): Promise<Freshness> {
  let parsed: RunResults;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as RunResults;
  } catch (err) {
    throw new FreshnessError(`cannot read dbt run results at ${file}: ${(err as Error).message}`);
  }
  const at = parsed.metadata?.generated_at ? new Date(parsed.metadata.generated_at) : null;
  if (!at || Number.isNaN(at.getTime())) throw new FreshnessError(`${file} has no metadata.generated_at`);
  const bad = (parsed.results ?? []).filter((r) => r.status === 'error' || r.status === 'fail' || r.status === 'runtime error');
  if (bad.length) return { at, source: 'dbt', failed: `dbt run had ${bad.length} failing node(s): ${bad.slice(0, 3).map((r) => r.unique_id).join(', ')}` };
  return { at, source: 'dbt' };
}
