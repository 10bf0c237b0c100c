import type pg from 'pg';
import type { Logger } from '../log.ts';
import { quoteIdent } from '../db/sql.ts';

/**
 * The events table (migration 020): a durable record of what an operator must hear about. Written by the
 * daemon, read by alert channels later (undelivered = `delivered_to_channels` lacks the channel).
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

export interface EventLog {
  record(ev: EventInput): Promise<number | null>;
}

/**
 * An event log writing to `<schema>.events`. A write that fails is logged, never thrown: losing an event row
 * must not fail the run it describes (the log line still carries it).
 */
export function eventLog(pool: pg.Pool, schema: string, log: Logger): EventLog {
  const table = `${quoteIdent(schema)}.events`;
  return {
    async record(ev) {
      const level = ev.severity === 'info' ? 'info' : ev.severity === 'warning' ? 'warn' : 'error';
      log[level]({ event: ev.kind, mapping: ev.mapping ?? undefined, run: ev.runId ?? undefined, details: ev.details }, ev.message);
      try {
        const r = await pool.query<{ id: string }>(
          `INSERT INTO ${table} (kind, severity, mapping, run_id, message, details, dedup_key) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
          [ev.kind, ev.severity, ev.mapping ?? null, ev.runId ?? null, ev.message, JSON.stringify(ev.details ?? {}), ev.dedupKey ?? null],
        );
        return Number(r.rows[0]?.id);
      } catch (err) {
        log.error({ err: (err as Error).message, event: ev.kind }, 'could not record event in the state database');
        return null;
      }
    },
  };
}

/** Recent events, newest first (for /status and tests). */
export async function recentEvents(pool: pg.Pool, schema: string, opts: { mapping?: string; limit?: number } = {}): Promise<EventRow[]> {
  const r = await pool.query(
    `SELECT id, at, kind, severity, mapping, run_id, message, details, dedup_key FROM ${quoteIdent(schema)}.events
      WHERE ($1::text IS NULL OR mapping = $1) ORDER BY id DESC LIMIT $2`,
    [opts.mapping ?? null, opts.limit ?? 50],
  );
  return r.rows.map((row) => ({
    id: Number(row.id), at: row.at, kind: row.kind, severity: row.severity, mapping: row.mapping,
    runId: row.run_id === null ? null : Number(row.run_id), message: row.message, details: row.details, dedupKey: row.dedup_key,
  }));
}
