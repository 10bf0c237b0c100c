import { earliestChangedMonth, type BuildState, type ModelTables } from './bookkeeping.ts';
import type { Queryable } from './payments.ts';

/**
 * What a build has to recompute. Snapshots form a timeline (month starts, then the as-of instant), and every
 * reason a snapshot can change affects it and every later one, so the work is always a suffix: "every
 * snapshot at or after `from`".
 *   - payments of month key K changed (late, deleted or edited rows): snapshots >= K, and the as-of instant
 *     (a payment in (K - 1 month, K] is first seen by the month start K, or by as-of if that comes first)
 *   - the as-of instant moved forward: the month starts it passed, and the new as-of instant
 *   - the as-of instant moved back: the new as-of instant (later snapshots are removed)
 */
export type BuildPlan =
  | { mode: 'full'; reason: string }
  | { mode: 'incremental'; from: Date | null; why: string[] };

export interface PlanInput {
  asOf: Date;
  fullRefresh: boolean;
  previous: BuildState | null;
  modelHash: string;
  payments: string;
  tablesPresent: boolean;
}

export async function planBuild(db: Queryable, t: ModelTables, input: PlanInput): Promise<BuildPlan> {
  const prev = input.previous;
  if (input.fullRefresh) return { mode: 'full', reason: '--full-refresh' };
  if (!prev) return { mode: 'full', reason: 'first build' };
  if (prev.modelHash !== input.modelHash) return { mode: 'full', reason: 'the model SQL changed since the last build' };
  if (prev.payments !== input.payments) return { mode: 'full', reason: `the payments relation changed (was ${prev.payments})` };
  if (!input.tablesPresent) return { mode: 'full', reason: 'a model table is missing' };

  const candidates: Date[] = [];
  const why: string[] = [];
  const changed = await earliestChangedMonth(db, t);
  if (changed) {
    candidates.push(changed < input.asOf ? changed : input.asOf);
    why.push(`payments changed in the month before ${changed.toISOString()}`);
  }
  if (input.asOf.getTime() < prev.asOf.getTime()) {
    candidates.push(input.asOf);
    why.push('the as-of instant moved back');
  } else if (input.asOf.getTime() > prev.asOf.getTime()) {
    const { rows } = await db.query<{ next: Date }>(
      `SELECT LEAST(date_trunc('month', $1::timestamptz) + interval '1 month', $2::timestamptz) AS next`,
      [prev.asOf.toISOString(), input.asOf.toISOString()]);
    const next = rows[0]?.next;
    if (next) candidates.push(next);
    why.push('the as-of instant moved forward');
  }
  const from = candidates.length ? new Date(Math.min(...candidates.map((d) => d.getTime()))) : null;
  return { mode: 'incremental', from, why };
}
