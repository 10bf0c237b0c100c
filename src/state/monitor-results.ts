import type { Actor } from './actor.ts';
import { formatActor } from './actor.ts';
import type { Db } from './transition.ts';

export type MonitorSeverity = 'ok' | 'warning' | 'critical';

export interface MonitorResult {
  monitor: string;
  type: string;
  severity: MonitorSeverity;
  value: number | null;
  baseline: number | null;
  threshold: number | null;
  detail: string;
  evidence?: Record<string, unknown>;
}

export interface StoredMonitorResult extends MonitorResult {
  id: number;
  at: Date;
  ackedAt: Date | null;
  ackedBy: string | null;
  ackReason: string | null;
}

/**
 * Stores one evaluation of each monitor. An acknowledgement of a critical result carries over to the next one
 * while the monitor stays critical (one incident, one acknowledgement); a recovery ends it.
 */
export async function recordMonitorResults(db: Db, schema: string, results: MonitorResult[], previous: Map<string, StoredMonitorResult>): Promise<void> {
  if (!results.length) return;
  const ack = (r: MonitorResult) => {
    const p = previous.get(r.monitor);
    return r.severity === 'critical' && p?.severity === 'critical' && p.ackedAt ? p : null;
  };
  await db.query(
    `INSERT INTO ${schema}.monitor_results (monitor, type, severity, value, baseline, threshold, detail, evidence, acked_at, acked_by, ack_reason)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[], $7::text[], $8::jsonb[], $9::timestamptz[], $10::text[], $11::text[])`,
    [results.map((r) => r.monitor), results.map((r) => r.type), results.map((r) => r.severity), results.map((r) => r.value),
      results.map((r) => r.baseline), results.map((r) => r.threshold), results.map((r) => r.detail), results.map((r) => JSON.stringify(r.evidence ?? {})),
      results.map((r) => ack(r)?.ackedAt ?? null), results.map((r) => ack(r)?.ackedBy ?? null), results.map((r) => ack(r)?.ackReason ?? null)]);
}

/** Each monitor's latest evaluation. */
export async function latestMonitorResults(db: Db, schema: string): Promise<StoredMonitorResult[]> {
  const { rows } = await db.query<{ id: string; at: Date; monitor: string; type: string; severity: MonitorSeverity; value: number | null; baseline: number | null; threshold: number | null; detail: string; evidence: Record<string, unknown>; acked_at: Date | null; acked_by: string | null; ack_reason: string | null }>(
    `SELECT DISTINCT ON (monitor) * FROM ${schema}.monitor_results ORDER BY monitor, id DESC`);
  return rows.map((r) => ({ id: Number(r.id), at: r.at, monitor: r.monitor, type: r.type, severity: r.severity, value: r.value, baseline: r.baseline, threshold: r.threshold,
    detail: r.detail, evidence: r.evidence, ackedAt: r.acked_at, ackedBy: r.acked_by, ackReason: r.ack_reason }));
}

/** Acknowledges the monitor's latest result (it then blocks nothing until it is evaluated again). False when it has none. */
export async function ackMonitor(db: Db, schema: string, monitor: string, actor: Actor, reason: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE ${schema}.monitor_results SET acked_at = now(), acked_by = $2, ack_reason = $3
     WHERE id = (SELECT max(id) FROM ${schema}.monitor_results WHERE monitor = $1)`, [monitor, formatActor(actor), reason]);
  return (rowCount ?? 0) > 0;
}
