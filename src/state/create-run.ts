import { hostname } from 'node:os';
import { maskText } from '../pii/mask.ts';
import type { Actor } from './actor.ts';
import { isFinal, type INITIAL_STATES } from './machine.ts';
import type { Db } from './transition.ts';

export interface NewRun {
  mapping: string;
  actor: Actor;
  configHash: string;
  /** The connection the mapping delivers to. */
  destination: string;
  status: (typeof INITIAL_STATES)[number];
  /** Why a run starts blocked or failed. */
  error?: string;
}

/**
 * A new run row in its initial state (planning; or blocked / failed when it could not even be planned, so
 * that every failure is a visible run), with its outbox row in the same statement. Returns the run id.
 */
export async function createRun(db: Db, schema: string, r: NewRun): Promise<number> {
  const final = isFinal(r.status);
  const { rows } = await db.query<{ id: string }>(
    `WITH run AS (
       INSERT INTO ${schema}.runs (mapping, actor_type, actor_id, status, status_reason, config_hash, destination, host, pid, error, finished_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $5, CASE WHEN $10::boolean THEN now() END) RETURNING id, mapping, status)
     , logged AS (
       INSERT INTO ${schema}.outbox (subject, run_id, mapping, from_state, to_state, actor_type, actor_id, reason)
       SELECT 'run', id, mapping, NULL, status, $2, $3, $5 FROM run)
     SELECT id FROM run`,
    [r.mapping, r.actor.type, r.actor.id, r.status, (r.error === undefined ? null : maskText(r.error).slice(0, 2000)), r.configHash, r.destination, hostname(), process.pid, final]);
  return Number(rows[0]!.id);
}
