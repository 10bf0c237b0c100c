import type { Db } from './transition.ts';

/**
 * One record's history in one mapping: what each run planned for it (payload before -> after), the receipt
 * each run wrote (status, request id, error), its delivered state now and the read-back verdicts. Receipts and
 * items are keyed by (run, key): the record is found through the mapping's runs, one index probe per run.
 */

export interface TimelineEntry {
  runId: number;
  runStatus: string;
  startedAt: Date;
  actor: string;
  op: string | null;
  before: unknown;
  after: unknown;
  receipt: { status: string; attempt: number; requestId: string | null; destinationId: string | null; created: boolean | null; errorCode: string | null; errorMessage: string | null; sentAt: Date | null; recordedAt: Date } | null;
}

export interface RecordTimeline {
  mapping: string;
  key: string;
  /** The delivered state now (null when the record was never confirmed). */
  delivered: { payload: unknown; destinationId: string | null; deliveredAt: Date | null; lastRunId: number | null; removedAt: Date | null; failCount: number; lastErrorCode: string | null; dead: boolean; reconcileStatus: string | null; reconciledAt: Date | null } | null;
  /** Newest first. */
  runs: TimelineEntry[];
  /** Read-back verdicts, newest first. */
  readBacks: Array<{ at: Date; status: string; driftedFields: string[] | null; actual: unknown; detail: string | null }>;
}

export async function recordTimeline(db: Db, schema: string, mapping: string, key: string, limit = 100): Promise<RecordTimeline> {
  const [runs, delivered, readBacks] = await Promise.all([
    db.query<{ run_id: string; run_status: string; started_at: Date; actor: string; op: string | null; before: unknown; after: unknown; r_status: string | null; attempt: number | null; request_id: string | null; destination_id: string | null; created: boolean | null; error_code: string | null; error_message: string | null; sent_at: Date | null; recorded_at: Date | null }>(
      `SELECT ru.id AS run_id, ru.status AS run_status, ru.started_at, ru.actor_type || ':' || ru.actor_id AS actor, coalesce(i.op, r.op) AS op, i.before, i.after,
              r.status AS r_status, r.attempt, r.request_id, r.destination_id, r.created, r.error_code, r.error_message, r.sent_at, r.recorded_at
       FROM ${schema}.runs ru
       LEFT JOIN ${schema}.run_items i ON i.run_id = ru.id AND i.key = $2
       LEFT JOIN ${schema}.receipts r ON r.run_id = ru.id AND r.key = $2
       WHERE ru.mapping = $1 AND (i.key IS NOT NULL OR r.key IS NOT NULL)
       ORDER BY ru.id DESC LIMIT $3`, [mapping, key, limit]),
    db.query<{ payload: unknown; destination_id: string | null; delivered_at: Date | null; last_run_id: string | null; removed_at: Date | null; fail_count: number; last_error_code: string | null; dead: boolean; reconcile_status: string | null; reconciled_at: Date | null }>(
      `SELECT payload, destination_id, delivered_at, last_run_id, removed_at, fail_count, last_error_code, dead_at IS NOT NULL AS dead, reconcile_status, reconciled_at
       FROM ${schema}.delivered WHERE mapping = $1 AND key = $2`, [mapping, key]),
    db.query<{ checked_at: Date; status: string; drifted_fields: string[] | null; actual: unknown; detail: string | null }>(
      `SELECT checked_at, status, drifted_fields, actual, detail FROM ${schema}.reconciliations WHERE mapping = $1 AND key = $2 ORDER BY id DESC LIMIT $3`, [mapping, key, limit]),
  ]);
  const d = delivered.rows[0];
  return {
    mapping, key,
    delivered: d ? { payload: d.payload, destinationId: d.destination_id, deliveredAt: d.delivered_at, lastRunId: d.last_run_id === null ? null : Number(d.last_run_id), removedAt: d.removed_at, failCount: d.fail_count, lastErrorCode: d.last_error_code, dead: d.dead, reconcileStatus: d.reconcile_status, reconciledAt: d.reconciled_at } : null,
    runs: runs.rows.map((r) => ({
      runId: Number(r.run_id), runStatus: r.run_status, startedAt: r.started_at, actor: r.actor, op: r.op, before: r.before, after: r.after,
      receipt: r.r_status === null ? null : { status: r.r_status, attempt: r.attempt ?? 1, requestId: r.request_id, destinationId: r.destination_id, created: r.created, errorCode: r.error_code, errorMessage: r.error_message, sentAt: r.sent_at, recordedAt: r.recorded_at! },
    })),
    readBacks: readBacks.rows.map((r) => ({ at: r.checked_at, status: r.status, driftedFields: r.drifted_fields, actual: r.actual, detail: r.detail })),
  };
}
