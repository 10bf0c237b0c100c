import type { Db } from './transition.ts';
import { maskDeep, maskText } from '../pii/mask.ts';

/**
 * The events table (migration 020): what an operator must hear about (SLA breaches, blocked syncs, rejected
 * reloads). Alert channels read it later; dedup_key folds repeats of one incident.
 */

export type Severity = 'info' | 'warning' | 'error' | 'critical';

export interface EventInput {
  kind: string;
  severity: Severity;
  message: string;
  mapping?: string | null;
  runId?: number | null;
  details?: Record<string, unknown>;
  /** Same key = same incident: channels alert once per key until it is acknowledged or resolved. */
  dedupKey?: string | null;
}

export interface EventRow extends Required<Omit<EventInput, 'details'>> {
  id: number;
  at: Date;
  details: Record<string, unknown>;
}

export async function insertEvent(db: Db, schema: string, ev: EventInput): Promise<number> {
  const r = await db.query<{ id: string }>(
    `INSERT INTO ${schema}.events (kind, severity, mapping, run_id, message, details, dedup_key) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
    // Events reach alerts, the API and the dashboard: personal data and quoted values are masked before they are stored.
    [ev.kind, ev.severity, ev.mapping ?? null, ev.runId ?? null, maskText(ev.message), JSON.stringify(maskDeep(ev.details ?? {})), ev.dedupKey ?? null]);
  return Number(r.rows[0]!.id);
}

/** Recent events, newest first (for /status and tests). */
export async function recentEvents(db: Db, schema: string, opts: { mapping?: string; limit?: number } = {}): Promise<EventRow[]> {
  const r = await db.query(
    `SELECT id, at, kind, severity, mapping, run_id, message, details, dedup_key FROM ${schema}.events
      WHERE ($1::text IS NULL OR mapping = $1) ORDER BY id DESC LIMIT $2`,
    [opts.mapping ?? null, opts.limit ?? 50]);
  return r.rows.map((row) => ({
    id: Number(row.id), at: row.at, kind: row.kind, severity: row.severity, mapping: row.mapping,
    runId: row.run_id === null ? null : Number(row.run_id), message: row.message, details: row.details, dedupKey: row.dedup_key,
  }));
}
