import type { Db } from './transition.ts';

export interface HeldRun {
  id: number;
  mapping: string;
  status: 'held' | 'approved';
  statusAt: Date;
  statusReason: string | null;
  actor: string;
  guardrails: Record<string, unknown> | null;
}

/** The mapping's run waiting for a person (held) or for delivery after approval, if any: at most one. */
export async function waitingRun(db: Db, schema: string, mapping: string): Promise<HeldRun | null> {
  const { rows } = await db.query<{ id: string; mapping: string; status: 'held' | 'approved'; status_at: Date; status_reason: string | null; actor: string; guardrails: Record<string, unknown> | null }>(
    `SELECT id, mapping, status, status_at, status_reason, actor_type || ':' || actor_id AS actor, guardrails FROM ${schema}.runs
     WHERE mapping = $1 AND status IN ('held', 'approved') ORDER BY id DESC LIMIT 1`, [mapping]);
  const r = rows[0];
  return r ? { id: Number(r.id), mapping: r.mapping, status: r.status, statusAt: r.status_at, statusReason: r.status_reason, actor: r.actor, guardrails: r.guardrails } : null;
}

/** One run by id with what approving or rejecting it must check. */
export async function runById(db: Db, schema: string, id: number): Promise<{ id: number; mapping: string; status: string; actor: string } | null> {
  const { rows } = await db.query<{ id: string; mapping: string; status: string; actor: string }>(
    `SELECT id, mapping, status, actor_type || ':' || actor_id AS actor FROM ${schema}.runs WHERE id = $1`, [id]);
  return rows[0] ? { ...rows[0], id: Number(rows[0].id) } : null;
}

/** Whether a person already decided the run (it went through approved or rejected, whatever it is now). */
export async function wasDecided(db: Db, schema: string, runId: number): Promise<boolean> {
  const { rows } = await db.query<{ decided: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${schema}.outbox WHERE run_id = $1 AND subject = 'run' AND to_state IN ('approved', 'rejected')) AS decided`, [runId]);
  return rows[0]!.decided;
}
