import type pg from 'pg';
import type { Mapping } from '../config/mapping.ts';

export interface PlanDetail {
  samples: Array<{ key: string; op: string; before: unknown; after: unknown }>;
  /** "Champions -> At Risk: 120", on the field mapped from the segment column. */
  transitions: Array<{ from: string; to: string; count: number }>;
  transitionField: string | null;
}

/** Which destination field carries the segment: the one mapped from rfm_segment, else the first field. */
export function segmentField(mapping: Mapping): string | null {
  return (mapping.fields.find((f) => f.from === 'rfm_segment') ?? mapping.fields[0])?.to ?? null;
}

/** The dry run's samples and transition matrix; with a plan helper, both halves' items are read and merged. */
export async function planDetail(client: pg.ClientBase, schema: string, mapping: Mapping, runId: number, samplesPerOp = 3, helper: pg.ClientBase | null = null): Promise<PlanDetail> {
  const field = segmentField(mapping);
  const halves = await Promise.all([client, ...(helper ? [helper] : [])].map(async (db) => ({
    samples: (await db.query<PlanDetail['samples'][number]>(
      `SELECT key, op, before, after FROM (
         SELECT *, row_number() OVER (PARTITION BY op ORDER BY key) AS rn FROM ${schema}.run_items WHERE run_id = $1
       ) x WHERE rn <= $2 ORDER BY op, key`,
      [runId, samplesPerOp])).rows,
    // Every pair of a half (a segment model has ~150 at most), so that the merged counts are whole.
    transitions: field === null ? [] : await segmentTransitions(db, schema, runId, field, helper ? 10_000 : 100),
  })));
  if (halves.length === 1) return { ...halves[0]!, transitionField: field };
  const byOrder = (a: { op: string; key: string }, b: { op: string; key: string }) => (a.op < b.op ? -1 : a.op > b.op ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const taken = new Map<string, number>();
  const samples = halves.flatMap((h) => h.samples).sort(byOrder).filter((r) => {
    const n = (taken.get(r.op) ?? 0) + 1;
    taken.set(r.op, n);
    return n <= samplesPerOp;
  });
  const sums = new Map<string, { from: string; to: string; count: number }>();
  for (const t of halves.flatMap((h) => h.transitions)) {
    const k = `${t.from}\u0000${t.to}`;
    const seen = sums.get(k);
    if (seen) seen.count += t.count;
    else sums.set(k, { ...t });
  }
  const transitions = [...sums.values()]
    .sort((a, b) => b.count - a.count || (a.from < b.from ? -1 : a.from > b.from ? 1 : a.to < b.to ? -1 : a.to > b.to ? 1 : 0))
    .slice(0, 100);
  return { samples, transitions, transitionField: field };
}

/** How the run moves records between segments: "(new) -> Champions: 40", "At Risk -> (removed): 2". */
export async function segmentTransitions(db: Pick<pg.Pool, 'query'> | pg.ClientBase, schema: string, runId: number, field: string, limit = 100): Promise<Array<{ from: string; to: string; count: number }>> {
  const { rows } = await db.query<{ from: string; to: string; count: number }>(
    `SELECT coalesce(before ->> $2, '(new)') AS "from", coalesce(after ->> $2, '(removed)') AS "to", count(*)::int AS count
     FROM ${schema}.run_items WHERE run_id = $1 AND (before ->> $2) IS DISTINCT FROM (after ->> $2)
     GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT $3`,
    [runId, field, limit],
  );
  return rows;
}
