import type pg from 'pg';
import { SegsyncError } from '../errors.ts';
import { maskText } from '../pii/mask.ts';
import type { Actor } from './actor.ts';
import { isFinal, sourcesOf, type RunState } from './machine.ts';

/** A pool or a client inside the caller's transaction: each operation here is one statement, atomic either way. */
export type Db = Pick<pg.Pool, 'query'> | pg.ClientBase;

/** A transition the machine does not allow (approving a run that is not held, finishing one twice). */
export class TransitionError extends SegsyncError {
  readonly runId: number;
  readonly from: RunState | null;
  readonly to: RunState;
  constructor(runId: number, from: RunState | null, to: RunState) {
    super('ILLEGAL_TRANSITION', from === null
      ? `run ${runId} does not exist`
      : `run ${runId} is ${from}${isFinal(from) ? ' (finished)' : ''}; it cannot become ${to}`);
    this.runId = runId;
    this.from = from;
    this.to = to;
  }
}

/** What a run transition may set besides its state. */
export interface RunPatch {
  planned?: object;
  outcome?: object;
  error?: string | null;
  snapshotAt?: Date | null;
  /** The guardrails' figures, verdicts and evidence. */
  guardrails?: object;
  /** Only from these states (a subset of what the machine allows): e.g. expire a run only while it is held. */
  onlyFrom?: RunState[];
  /** A final transition: the Merkle root of the run's receipts as the run recorded them (src/audit/receipts-tree.ts), for the audit seal. */
  receipts?: { count: number; root: string } | null;
}

export interface RunTarget {
  run: number;
}

/** A batch of a run's items: a contiguous key range of its planned items. */
export interface ItemsTarget {
  items: { run: number; mapping: string; firstKey: string; lastKey: string; size: number };
}

export type ItemsTo = 'sending' | 'answered';

const MESSAGE_CAP = 2000;

/**
 * The one write path for states. A run moves to `to` only from a state the machine allows (else a
 * TransitionError naming the state it is in); a batch of items moves to sending before its request leaves,
 * and to answered when its receipts are written (in the caller's transaction). Each transition appends its
 * outbox row in the same statement, with the actor and the reason.
 */
export async function transition(db: Db, schema: string, target: RunTarget, to: RunState, actor: Actor, reason: string | null, patch?: RunPatch): Promise<RunRow>;
export async function transition(db: Db, schema: string, target: ItemsTarget, to: ItemsTo, actor: Actor, reason: string | null, details?: object): Promise<void>;
export async function transition(db: Db, schema: string, target: RunTarget | ItemsTarget, to: RunState | ItemsTo, actor: Actor, reason: string | null, extra?: RunPatch | object): Promise<RunRow | void> {
  if ('items' in target) return transitionItems(db, schema, target, to as ItemsTo, actor, reason, extra ?? {});
  return transitionRun(db, schema, target.run, to as RunState, actor, reason, (extra ?? {}) as RunPatch);
}

export interface RunRow {
  id: number;
  mapping: string;
  status: RunState;
  statusAt: Date;
  plannedAt: Date | null;
  finishedAt: Date | null;
  startedAt: Date;
}

async function transitionRun(db: Db, schema: string, runId: number, to: RunState, actor: Actor, reason: string | null, patch: RunPatch): Promise<RunRow> {
  const final = isFinal(to);
  // What a run's error and reason say reaches events, logs, the API and /status: database and destination text
  // quoting values (a cast error quoting an e-mail address) is masked here, on the one write path.
  const cap = (s: string | null | undefined) => (s == null ? s : maskText(s).slice(0, MESSAGE_CAP));
  const { rows } = await db.query<{ id: string; mapping: string; status: RunState; status_at: Date; planned_at: Date | null; finished_at: Date | null; started_at: Date }>(
    `WITH old AS (SELECT id, status FROM ${schema}.runs WHERE id = $1 AND status = ANY($11::text[]) FOR UPDATE),
     moved AS (
       UPDATE ${schema}.runs r SET status = $2, status_at = clock_timestamp(), status_reason = $4,
         planned = coalesce($5::jsonb, r.planned), outcome = coalesce($6::jsonb, r.outcome),
         error = CASE WHEN $7::boolean THEN $8 ELSE r.error END,
         snapshot_at = CASE WHEN $9::boolean THEN $10::timestamptz ELSE r.snapshot_at END,
         planned_at = CASE WHEN $2 IN ('planned', 'held') THEN clock_timestamp() WHEN $2 = 'planning' THEN NULL ELSE r.planned_at END,
         guardrails = coalesce($15::jsonb, r.guardrails),
         finished_at = CASE WHEN $3::boolean THEN clock_timestamp() ELSE NULL END
       FROM old WHERE r.id = old.id
       RETURNING r.id, r.mapping, r.status, r.status_at, r.planned_at, r.finished_at, r.started_at, old.status AS from_state
     ),
     logged AS (
       INSERT INTO ${schema}.outbox (subject, run_id, mapping, from_state, to_state, actor_type, actor_id, reason, details)
       SELECT 'run', id, mapping, from_state, status, $12, $13, $4, $14::jsonb FROM moved
     )
     SELECT id, mapping, status, status_at, planned_at, finished_at, started_at FROM moved`,
    [runId, to, final, cap(reason), patch.planned ? JSON.stringify(patch.planned) : null, patch.outcome ? JSON.stringify(patch.outcome) : null,
      patch.error !== undefined, cap(patch.error ?? null), patch.snapshotAt !== undefined, patch.snapshotAt ?? null, sourcesOf(to).filter((st) => !patch.onlyFrom || patch.onlyFrom.includes(st)),
      actor.type, actor.id, JSON.stringify({ ...(patch.planned ? { planned: patch.planned } : {}), ...(patch.outcome ? { outcome: patch.outcome } : {}), ...(patch.receipts && final ? { receipts: patch.receipts } : {}) }),
      patch.guardrails ? JSON.stringify(patch.guardrails) : null]);
  const r = rows[0];
  if (!r) {
    const now = await db.query<{ status: RunState }>(`SELECT status FROM ${schema}.runs WHERE id = $1`, [runId]);
    throw new TransitionError(runId, now.rows[0]?.status ?? null, to);
  }
  return { id: Number(r.id), mapping: r.mapping, status: r.status, statusAt: r.status_at, plannedAt: r.planned_at, finishedAt: r.finished_at, startedAt: r.started_at };
}

async function transitionItems(db: Db, schema: string, t: ItemsTarget, to: ItemsTo, actor: Actor, reason: string | null, details: object): Promise<void> {
  const { run, mapping, firstKey, lastKey, size } = t.items;
  const statement = to === 'sending'
    ? `WITH b AS (
         INSERT INTO ${schema}.run_batches (run_id, first_key, last_key, size, status) VALUES ($1, $2, $3, $4, 'sending')
         ON CONFLICT (run_id, first_key) DO UPDATE SET last_key = EXCLUDED.last_key, size = EXCLUDED.size, status = 'sending', sent_at = clock_timestamp(), answered_at = NULL
         RETURNING run_id)
       INSERT INTO ${schema}.outbox (subject, run_id, mapping, from_state, to_state, actor_type, actor_id, reason, details)
       SELECT 'items', run_id, $5, 'planned', 'sending', $6, $7, $8, $9::jsonb FROM b`
    : `WITH b AS (
         UPDATE ${schema}.run_batches SET status = 'answered', answered_at = clock_timestamp()
         WHERE run_id = $1 AND first_key = $2 AND last_key = $3 AND size = $4 AND status = 'sending' RETURNING run_id)
       INSERT INTO ${schema}.outbox (subject, run_id, mapping, from_state, to_state, actor_type, actor_id, reason, details)
       SELECT 'items', run_id, $5, 'sending', 'answered', $6, $7, $8, $9::jsonb FROM b`;
  const { rowCount } = await db.query(statement, [run, firstKey, lastKey, size, mapping, actor.type, actor.id, reason, JSON.stringify({ size, ...details })]);
  if (rowCount !== 1) throw new SegsyncError('ILLEGAL_TRANSITION', `run ${run}: a batch of ${size} item(s) is not ${to === 'sending' ? 'plannable' : 'sending'}; it cannot become ${to}`);
}
