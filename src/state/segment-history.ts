import { quoteIdent } from '../db/sql.ts';
import type { Db } from './transition.ts';

/**
 * Reads of the RFM history model (rfm_segments_hist, in the models schema) for the record debugger and the
 * segment charts. The model is the user's table, not segsync's state, but it is only ever read here.
 */

async function histExists(db: Db, modelsSchema: string): Promise<boolean> {
  const { rows } = await db.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [`${quoteIdent(modelsSchema)}.rfm_segments_hist`]);
  return rows[0]?.t != null;
}

/** One customer's segment per snapshot, oldest first; null when there is no history model. */
export async function customerSegments(db: Db, modelsSchema: string, userId: string): Promise<Array<{ snapshotAt: Date; segment: string; recency: number | null; frequency: number | null; monetary: number | null }> | null> {
  if (!(await histExists(db, modelsSchema))) return null;
  const { rows } = await db.query<{ snapshot_at: Date; rfm_segment: string; recency_score: number | null; frequency_score: number | null; monetary_score: number | null }>(
    `SELECT snapshot_at, rfm_segment, recency_score, frequency_score, monetary_score FROM ${quoteIdent(modelsSchema)}.rfm_segments_hist
     WHERE user_id = $1 ORDER BY snapshot_at`, [userId]);
  return rows.map((r) => ({ snapshotAt: r.snapshot_at, segment: r.rfm_segment, recency: r.recency_score, frequency: r.frequency_score, monetary: r.monetary_score }));
}

export interface SegmentSizes {
  snapshots: Date[];
  /** Segment -> customers per snapshot (same order as snapshots; 0 where absent). */
  segments: Record<string, number[]>;
}

/** Customers per segment per snapshot, over the last `snapshots` snapshots; null when there is no history model. */
export async function segmentSizes(db: Db, modelsSchema: string, snapshots = 36): Promise<SegmentSizes | null> {
  if (!(await histExists(db, modelsSchema))) return null;
  const t = `${quoteIdent(modelsSchema)}.rfm_segments_hist`;
  const { rows } = await db.query<{ snapshot_at: Date; rfm_segment: string; n: number }>(
    `WITH s AS (SELECT DISTINCT snapshot_at FROM ${t} ORDER BY snapshot_at DESC LIMIT $1)
     SELECT h.snapshot_at, h.rfm_segment, count(*)::int AS n FROM ${t} h JOIN s USING (snapshot_at) GROUP BY 1, 2 ORDER BY 1, 2`, [snapshots]);
  const times = [...new Set(rows.map((r) => r.snapshot_at.getTime()))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const segments: Record<string, number[]> = {};
  for (const r of rows) (segments[r.rfm_segment] ??= times.map(() => 0))[index.get(r.snapshot_at.getTime())!] = r.n;
  return { snapshots: times.map((t) => new Date(t)), segments };
}

/** How customers moved between segments from one snapshot to the next (the latest pair unless `to` names one). */
export async function segmentFlows(db: Db, modelsSchema: string, to?: Date): Promise<{ from: Date; to: Date; flows: Array<{ from: string; to: string; count: number }> } | null> {
  if (!(await histExists(db, modelsSchema))) return null;
  const t = `${quoteIdent(modelsSchema)}.rfm_segments_hist`;
  const pair = await db.query<{ a: Date | null; b: Date | null }>(
    `WITH b AS (SELECT max(snapshot_at) AS b FROM ${t} WHERE ($1::timestamptz IS NULL OR snapshot_at <= $1))
     SELECT (SELECT max(snapshot_at) FROM ${t}, b WHERE snapshot_at < b.b) AS a, b.b FROM b`, [to ?? null]);
  const p = pair.rows[0];
  if (!p?.a || !p.b) return null;
  const { rows } = await db.query<{ from: string; to: string; count: number }>(
    `SELECT coalesce(x.rfm_segment, '(new)') AS "from", coalesce(y.rfm_segment, '(gone)') AS "to", count(*)::int AS count
     FROM (SELECT user_id, rfm_segment FROM ${t} WHERE snapshot_at = $1) x
     FULL JOIN (SELECT user_id, rfm_segment FROM ${t} WHERE snapshot_at = $2) y ON x.user_id = y.user_id
     GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2`, [p.a, p.b]);
  return { from: p.a, to: p.b, flows: rows };
}
