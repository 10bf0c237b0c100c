import type { Db } from './transition.ts';

export interface RunReport {
  /** Seconds spent planning and delivering, from the run row. */
  stages: { plan?: number; deliver?: number };
  /** Receipts per op and status. */
  outcomes: Array<{ op: string; status: string; n: number }>;
}

/** A finished run's stage timings (planned_at splits planning from delivery) and its receipts per op and status. */
export async function runReport(db: Db, schema: string, runId: number): Promise<RunReport> {
  const { rows } = await db.query<{ plan: number | null; deliver: number | null }>(
    // Delivery is timed from the run's (last) move to delivering: an approved run was planned long before.
    `SELECT extract(epoch FROM r.planned_at - r.started_at)::float8 AS plan,
            extract(epoch FROM r.finished_at - coalesce((SELECT max(o.at) FROM ${schema}.outbox o WHERE o.run_id = r.id AND o.subject = 'run' AND o.to_state = 'delivering'), r.planned_at))::float8 AS deliver
       FROM ${schema}.runs r WHERE r.id = $1`, [runId]);
  const stages: RunReport['stages'] = {};
  if (rows[0]?.plan != null) stages.plan = rows[0].plan;
  if (rows[0]?.deliver != null) stages.deliver = rows[0].deliver;
  const outcomes = await db.query<{ op: string; status: string; n: number }>(
    `SELECT op, status, count(*)::int AS n FROM ${schema}.receipts WHERE run_id = $1 GROUP BY op, status`, [runId]);
  return { stages, outcomes: outcomes.rows };
}
