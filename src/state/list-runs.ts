import type { RunState } from './machine.ts';
import type { Db } from './transition.ts';

export interface RunListRow extends Record<string, unknown> {
  id: number;
  mapping: string;
  actor: string;
  status: RunState;
  planned: Record<string, number>;
  outcome: Record<string, number>;
  started_at: Date;
  finished_at: Date | null;
  error: string | null;
  reason: string | null;
  destination: string;
  host: string | null;
  pid: number | null;
  config_hash: string;
}

/** Recent runs, newest first, optionally of one mapping and in some states. */
export async function listRuns(db: Db, schema: string, f: { mapping?: string; status?: RunState[]; limit: number }): Promise<RunListRow[]> {
  const { rows } = await db.query<RunListRow & { id: string }>(
    `SELECT id, mapping, actor_type || ':' || actor_id AS actor, status, planned, outcome, started_at, finished_at, error, status_reason AS reason,
            destination, host, pid, config_hash FROM ${schema}.runs
     WHERE ($1::text IS NULL OR mapping = $1) AND ($2::text[] IS NULL OR status = ANY($2)) ORDER BY id DESC LIMIT $3`,
    [f.mapping ?? null, f.status ?? null, f.limit]);
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

export interface LastRun {
  runId: number;
  status: string;
  startedAt: Date;
  finishedAt: Date | null;
}

/** The mapping's newest run. */
export async function lastRun(db: Db, schema: string, mapping: string): Promise<LastRun | null> {
  const { rows } = await db.query<{ id: string; status: string; started_at: Date; finished_at: Date | null }>(
    `SELECT id, status, started_at, finished_at FROM ${schema}.runs WHERE mapping = $1 ORDER BY id DESC LIMIT 1`, [mapping]);
  const r = rows[0];
  return r ? { runId: Number(r.id), status: r.status, startedAt: r.started_at, finishedAt: r.finished_at } : null;
}

/** Mappings that have runs a crash may have left behind (planning, planned, delivering). */
export async function mappingsWithOpenRuns(db: Db, schema: string): Promise<string[]> {
  const { rows } = await db.query<{ mapping: string }>(
    `SELECT DISTINCT mapping FROM ${schema}.runs WHERE status IN ('planning', 'planned', 'delivering')`);
  return rows.map((r) => r.mapping);
}
