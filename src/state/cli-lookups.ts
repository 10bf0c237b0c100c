import type { Db } from './transition.ts';
import type { Severity } from './events.ts';

/** State reads the CLI's filters are checked against, and the events listing (`segsync events`). */

/** Mapping names that have runs in the state (a mapping removed from the config still has its receipts). */
export async function mappingsInState(db: Db, schema: string): Promise<string[]> {
  const { rows } = await db.query<{ mapping: string }>(`SELECT DISTINCT mapping FROM ${schema}.runs ORDER BY mapping`);
  return rows.map((r) => r.mapping);
}

/** The run's mapping, or null when there is no such run. */
export async function runMappingOf(db: Db, schema: string, runId: number): Promise<string | null> {
  const { rows } = await db.query<{ mapping: string }>(`SELECT mapping FROM ${schema}.runs WHERE id = $1`, [runId]);
  return rows[0]?.mapping ?? null;
}

/** The last value the runs' id sequence handed out (a dry-run plan must not move it). */
export async function lastRunId(db: Db, schema: string): Promise<number> {
  const { rows } = await db.query<{ id: string | null }>(`SELECT max(id) AS id FROM ${schema}.runs`);
  return Number(rows[0]?.id ?? 0);
}

export interface EventFilter {
  mapping?: string;
  kind?: string;
  severity?: Severity[];
  run?: number;
  since?: Date;
  until?: Date;
  limit: number;
}

export interface EventListRow extends Record<string, unknown> {
  id: number;
  at: Date;
  kind: string;
  severity: Severity;
  mapping: string | null;
  run_id: number | null;
  message: string;
  details: Record<string, unknown>;
}

/** Events, newest first, filtered. */
export async function listEvents(db: Db, schema: string, f: EventFilter): Promise<EventListRow[]> {
  const { rows } = await db.query<EventListRow & { id: string; run_id: string | null }>(
    `SELECT id, at, kind, severity, mapping, run_id, message, details FROM ${schema}.events
      WHERE ($1::text IS NULL OR mapping = $1) AND ($2::text IS NULL OR kind = $2) AND ($3::text[] IS NULL OR severity = ANY($3))
        AND ($4::bigint IS NULL OR run_id = $4) AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
      ORDER BY id DESC LIMIT $7`,
    [f.mapping ?? null, f.kind ?? null, f.severity ?? null, f.run ?? null, f.since ?? null, f.until ?? null, f.limit]);
  return rows.map((r) => ({ ...r, id: Number(r.id), run_id: r.run_id === null ? null : Number(r.run_id) }));
}

/** The event kinds recorded so far (to name them when a --kind matches none). */
export async function eventKinds(db: Db, schema: string): Promise<string[]> {
  const { rows } = await db.query<{ kind: string }>(`SELECT DISTINCT kind FROM ${schema}.events ORDER BY kind`);
  return rows.map((r) => r.kind);
}
