import type { EventRow, Severity } from './events.ts';
import type { Db } from './transition.ts';

/** One page of events, newest first, filtered; `next` continues below the last id, null on the last page. */
export async function eventsPage(db: Db, schema: string, f: { mapping?: string; severity?: Severity[]; kind?: string; runId?: number; beforeId?: number; limit: number }): Promise<{ events: EventRow[]; next: number | null }> {
  const { rows } = await db.query(
    `SELECT id, at, kind, severity, mapping, run_id, message, details, dedup_key FROM ${schema}.events
     WHERE ($1::text IS NULL OR mapping = $1) AND ($2::text[] IS NULL OR severity = ANY($2)) AND ($3::text IS NULL OR kind = $3)
       AND ($4::bigint IS NULL OR run_id = $4) AND ($5::bigint IS NULL OR id < $5)
     ORDER BY id DESC LIMIT $6`,
    [f.mapping ?? null, f.severity ?? null, f.kind ?? null, f.runId ?? null, f.beforeId ?? null, f.limit + 1]);
  const events: EventRow[] = rows.slice(0, f.limit).map((row) => ({
    id: Number(row.id), at: row.at, kind: row.kind, severity: row.severity, mapping: row.mapping,
    runId: row.run_id === null ? null : Number(row.run_id), message: row.message, details: row.details, dedupKey: row.dedup_key,
  }));
  return { events, next: rows.length > f.limit ? events[events.length - 1]!.id : null };
}
