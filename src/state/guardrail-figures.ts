import type pg from 'pg';
import type { Db } from './transition.ts';

/**
 * The figures guardrails judge a run by, computed in SQL in the plan's snapshot and stored with the run
 * (runs.planned.figures), so later runs learn their baseline from earlier delivered runs.
 */
export interface RunFigures {
  /** Records in the source. */
  population: number;
  /** Records delivered (confirmed, not removed) before this run. */
  delivered: number;
  removals: number;
  /** Planned updates whose segment changes. */
  segmentChanges: number;
  /** Records per segment in the source. */
  segments: Record<string, number>;
  /** R/F/M cut-points of the source at p20, p40, p60, p80, when it has the columns. */
  cutPoints: Record<string, number[]>;
}

/** Of the run's planned items on this connection: removals, and updates that move a record to another segment. */
export async function itemFigures(db: pg.ClientBase, schema: string, runId: number, segmentField: string | null): Promise<{ removals: number; segmentChanges: number }> {
  const { rows } = await db.query<{ removals: number; changes: number }>(
    `SELECT count(*) FILTER (WHERE op = 'remove')::int AS removals,
            count(*) FILTER (WHERE op = 'update' AND $2::text IS NOT NULL AND (before ->> $2) IS DISTINCT FROM (after ->> $2))::int AS changes
     FROM ${schema}.run_items WHERE run_id = $1`, [runId, segmentField]);
  return { removals: rows[0]!.removals, segmentChanges: rows[0]!.changes };
}

export interface PastRun {
  id: number;
  status: string;
  startedAt: Date;
  figures: RunFigures;
}

/**
 * The mapping's last `limit` delivered runs (succeeded or partial: what the destination now reflects) that
 * stored figures, newest first. Held, rejected and cancelled runs never enter a baseline, nor does `exclude`.
 */
export async function pastFigures(db: Db, schema: string, mapping: string, exclude: number, limit: number): Promise<PastRun[]> {
  const { rows } = await db.query<{ id: string; status: string; started_at: Date; figures: RunFigures }>(
    `SELECT id, status, started_at, guardrails -> 'figures' AS figures FROM ${schema}.runs
     WHERE mapping = $1 AND id <> $2 AND status IN ('succeeded', 'partial') AND guardrails ? 'figures'
     ORDER BY id DESC LIMIT $3`, [mapping, exclude, limit]);
  return rows.map((r) => ({ id: Number(r.id), status: r.status, startedAt: r.started_at, figures: r.figures }));
}
