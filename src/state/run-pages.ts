import { isFinal, type RunState } from './machine.ts';
import { segmentTransitions } from './plan-detail.ts';
import type { Db } from './transition.ts';

/**
 * Paged reads of runs and their items for the API and the dashboard. Pages are keyset pages (runs by id
 * descending, items by key ascending): a page costs the same however many runs or items the ledger holds.
 */

export interface RunRow {
  id: number;
  mapping: string;
  status: RunState;
  actor: string;
  destination: string;
  configHash: string;
  planned: Record<string, number>;
  outcome: Record<string, unknown>;
  error: string | null;
  reason: string | null;
  startedAt: Date;
  plannedAt: Date | null;
  finishedAt: Date | null;
  statusAt: Date;
  snapshotAt: Date | null;
  guardrails: Record<string, unknown> | null;
}

const RUN_COLUMNS = `id, mapping, status, actor_type || ':' || actor_id AS actor, destination, config_hash, planned, outcome, error, status_reason,
  started_at, planned_at, finished_at, status_at, snapshot_at`;

interface RawRun {
  id: string; mapping: string; status: RunState; actor: string; destination: string; config_hash: string; planned: Record<string, number>;
  outcome: Record<string, unknown>; error: string | null; status_reason: string | null; started_at: Date; planned_at: Date | null;
  finished_at: Date | null; status_at: Date; snapshot_at: Date | null; guardrails?: Record<string, unknown> | null;
}

function toRun(r: RawRun): RunRow {
  return {
    id: Number(r.id), mapping: r.mapping, status: r.status, actor: r.actor, destination: r.destination, configHash: r.config_hash,
    planned: r.planned, outcome: r.outcome, error: r.error, reason: r.status_reason, startedAt: r.started_at, plannedAt: r.planned_at,
    finishedAt: r.finished_at, statusAt: r.status_at, snapshotAt: r.snapshot_at, guardrails: r.guardrails ?? null,
  };
}

export interface RunPageFilter {
  mapping?: string;
  status?: RunState[];
  /** Only runs with an id below this one (the cursor of the previous page). */
  beforeId?: number;
  since?: Date;
  limit: number;
}

/** One page of runs, newest first. `next` is the id to continue below, null on the last page. */
export async function runsPage(db: Db, schema: string, f: RunPageFilter): Promise<{ runs: RunRow[]; next: number | null }> {
  const { rows } = await db.query<RawRun>(
    `SELECT ${RUN_COLUMNS} FROM ${schema}.runs
     WHERE ($1::text IS NULL OR mapping = $1) AND ($2::text[] IS NULL OR status = ANY($2)) AND ($3::bigint IS NULL OR id < $3)
       AND ($4::timestamptz IS NULL OR started_at >= $4)
     ORDER BY id DESC LIMIT $5`,
    [f.mapping ?? null, f.status ?? null, f.beforeId ?? null, f.since ?? null, f.limit + 1]);
  const runs = rows.slice(0, f.limit).map(toRun);
  return { runs, next: rows.length > f.limit ? runs[runs.length - 1]!.id : null };
}

/** The newest run of each mapping (one index probe per mapping). */
export async function latestRuns(db: Db, schema: string, mappings: string[]): Promise<Map<string, RunRow>> {
  if (!mappings.length) return new Map();
  const { rows } = await db.query<RawRun>(
    `SELECT r.* FROM unnest($1::text[]) AS m(name)
     CROSS JOIN LATERAL (SELECT ${RUN_COLUMNS} FROM ${schema}.runs WHERE mapping = m.name ORDER BY id DESC LIMIT 1) r`, [mappings]);
  return new Map(rows.map((r) => [r.mapping, toRun(r)]));
}

export interface RunDetail extends RunRow {
  /** Planned items per op. */
  items: Array<{ op: string; n: number }>;
  /** Receipts per op and status. */
  outcomes: Array<{ op: string; status: string; n: number }>;
  /** Failed receipts grouped by error code, with one message as an example. */
  errors: Array<{ code: string; n: number; example: string | null }>;
  /** How the run moves records between segments (on the field mapped from the segment). */
  transitions: Array<{ from: string; to: string; count: number }>;
  /** Every state the run went through, with who moved it and why (the outbox). */
  history: Array<{ at: Date; from: string | null; to: string; actor: string; reason: string | null }>;
}

/**
 * One run with what explains it; null for an unknown id. Costs stay flat in the ledger's size: the planned
 * counts come from the run row, a run whose every planned record was confirmed needs no receipt scan, failed
 * receipts are found through a partial index (migration 070), and the segment transitions (a pass over the
 * run's items) are read only when asked for.
 */
export async function runDetail(db: Db, schema: string, id: number, segmentField: string | null, o: { transitions?: boolean } = {}): Promise<RunDetail | null> {
  const { rows } = await db.query<RawRun>(`SELECT ${RUN_COLUMNS}, guardrails FROM ${schema}.runs WHERE id = $1`, [id]);
  if (!rows[0]) return null;
  const run = toRun(rows[0]);
  const OPS = ['create', 'update', 'remove'] as const;
  const p = run.planned as Partial<Record<string, number>>;
  const fromRow = OPS.every((op) => typeof p[op] === 'number');
  // A finished run gave each planned record exactly one receipt: its delivered counts are the planned counts
  // less the receipts that are not delivered (few, read through the partial index of migration 070).
  const finished = fromRow && isFinal(run.status);
  const undelivered = `SELECT op, status, count(*)::int AS n FROM ${schema}.receipts WHERE run_id = $1 AND status <> 'delivered' GROUP BY op, status ORDER BY op, status`;
  const [items, outcomeRows, errors, history] = await Promise.all([
    fromRow ? Promise.resolve({ rows: OPS.filter((op) => (p[op] ?? 0) > 0).map((op) => ({ op, n: p[op]! })) })
      : db.query<{ op: string; n: number }>(`SELECT op, count(*)::int AS n FROM ${schema}.run_items WHERE run_id = $1 GROUP BY op ORDER BY op`, [id]),
    db.query<{ op: string; status: string; n: number }>(finished ? undelivered
      : `SELECT op, status, count(*)::int AS n FROM ${schema}.receipts WHERE run_id = $1 GROUP BY op, status ORDER BY op, status`, [id]),
    db.query<{ code: string; n: number; example: string | null }>(
      `SELECT coalesce(error_code, 'UNKNOWN') AS code, count(*)::int AS n, min(error_message) AS example FROM ${schema}.receipts
       WHERE run_id = $1 AND status <> 'delivered' AND status IN ('failed', 'in_doubt') GROUP BY 1 ORDER BY 2 DESC, 1`, [id]),
    db.query<{ at: Date; from: string | null; to: string; actor: string; reason: string | null }>(
      `SELECT at, from_state AS "from", to_state AS "to", actor_type || ':' || actor_id AS actor, reason FROM ${schema}.outbox
       WHERE run_id = $1 AND subject = 'run' ORDER BY id`, [id]),
  ]);
  let outcomes = outcomeRows.rows;
  // Rejected, cancelled or blocked runs sent nothing; a run that failed before its items got receipts is read as it is.
  if (finished && !['rejected', 'cancelled', 'blocked'].includes(run.status) && (run.status !== 'failed' || outcomes.length > 0)) {
    const delivered = OPS.map((op) => ({ op, status: 'delivered', n: (p[op] ?? 0) - outcomes.filter((r) => r.op === op).reduce((a, r) => a + r.n, 0) })).filter((r) => r.n > 0);
    outcomes = [...delivered, ...outcomes].sort((a, b) => (a.op < b.op ? -1 : a.op > b.op ? 1 : a.status < b.status ? -1 : a.status > b.status ? 1 : 0));
  }
  const transitions = segmentField && o.transitions !== false ? await segmentTransitions(db, schema, id, segmentField) : [];
  return { ...run, items: items.rows, outcomes, errors: errors.rows, transitions, history: history.rows };
}

export interface ItemRow {
  key: string;
  op: string;
  status: string;
  before: unknown;
  after: unknown;
  errorCode: string | null;
  requestId: string | null;
}

/** One page of a run's planned items by key, with each item's state (its receipt, else sending/planned). */
export async function runItemsPage(db: Db, schema: string, runId: number, f: { afterKey?: string; op?: string; limit: number }): Promise<{ items: ItemRow[]; next: string | null }> {
  const { rows } = await db.query<{ key: string; op: string; status: string; before: unknown; after: unknown; error_code: string | null; request_id: string | null }>(
    `SELECT ri.key, ri.op, coalesce(r.status, CASE WHEN EXISTS (SELECT 1 FROM ${schema}.run_batches b WHERE b.run_id = ri.run_id AND ri.key BETWEEN b.first_key AND b.last_key AND b.status = 'sending') THEN 'sending' ELSE 'planned' END) AS status,
            ri.before, ri.after, r.error_code, r.request_id
     FROM ${schema}.run_items ri LEFT JOIN ${schema}.receipts r ON r.run_id = ri.run_id AND r.key = ri.key
     WHERE ri.run_id = $1 AND ($2::text IS NULL OR ri.key > $2) AND ($3::text IS NULL OR ri.op = $3)
     ORDER BY ri.key LIMIT $4`,
    [runId, f.afterKey ?? null, f.op ?? null, f.limit + 1]);
  const items = rows.slice(0, f.limit).map((r) => ({ key: r.key, op: r.op, status: r.status, before: r.before, after: r.after, errorCode: r.error_code, requestId: r.request_id }));
  return { items, next: rows.length > f.limit ? items[items.length - 1]!.key : null };
}

/** Per run of a mapping (oldest first): the share of its records the plan changed (create + update + remove over all planned). */
export async function changedShares(db: Db, schema: string, mapping: string, limit = 60): Promise<Array<{ runId: number; at: Date; status: string; changed: number; total: number }>> {
  const { rows } = await db.query<{ id: string; started_at: Date; status: string; changed: number; total: number }>(
    `SELECT * FROM (SELECT id, started_at, status,
            (coalesce((planned->>'create')::int, 0) + coalesce((planned->>'update')::int, 0) + coalesce((planned->>'remove')::int, 0)) AS changed,
            (coalesce((planned->>'create')::int, 0) + coalesce((planned->>'update')::int, 0) + coalesce((planned->>'remove')::int, 0) + coalesce((planned->>'unchanged')::int, 0)) AS total
       FROM ${schema}.runs WHERE mapping = $1 AND planned ? 'unchanged' ORDER BY id DESC LIMIT $2) x ORDER BY id`, [mapping, limit]);
  return rows.map((r) => ({ runId: Number(r.id), at: r.started_at, status: r.status, changed: r.changed, total: r.total }));
}
