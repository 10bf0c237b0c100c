import type { App } from '../app.ts';
import { UsageError } from '../errors.ts';
import { formatActor, type Actor } from '../state/actor.ts';
import { runById } from '../state/held-run.ts';
import { transition, TransitionError } from '../state/transition.ts';
import { decideHeld, ensureState, type RunSummary } from './run.ts';

/**
 * What a person (CLI or API) does to a waiting run, in one place so both front ends do exactly the same:
 * approve (and deliver now unless told not to), reject, cancel. Each records the actor and the reason.
 */

/** Approves a held run; with `deliver`, delivers it right away through the mapping's next run. */
export async function approveRun(app: App, runId: number, reason: string, actor: Actor, o: { mapping?: string; deliver?: (mapping: string) => Promise<RunSummary> } = {}): Promise<{ mapping: string; by: string; summary: RunSummary | null }> {
  const r = await decideHeld(app, runId, 'approved', reason, actor, o.mapping);
  return { ...r, summary: o.deliver ? await o.deliver(r.mapping) : null };
}

/** Rejects a held run: nothing of it is sent. */
export async function rejectRun(app: App, runId: number, reason: string, actor: Actor, mapping?: string): Promise<{ mapping: string; by: string }> {
  return decideHeld(app, runId, 'rejected', reason, actor, mapping);
}

/** The states a person may cancel a run from: waiting for a person or for delivery. A run sending is stopped by signals, not cancelled. */
export const CANCELLABLE = ['held', 'approved'] as const;

/** Cancels a held or approved run (nothing more of it is sent); refused, with the run's state, otherwise. */
export async function cancelRun(app: App, runId: number, reason: string, actor: Actor): Promise<{ mapping: string; by: string }> {
  if (!reason.trim()) throw new UsageError('a cancellation needs a reason');
  await ensureState(app);
  const schema = app.config.settings.state.schema;
  const run = await runById(app.warehouse.pool, schema, runId);
  if (!run) throw new UsageError(`no run ${runId}`);
  try {
    await transition(app.warehouse.pool, schema, { run: runId }, 'cancelled', actor, reason.trim(), { onlyFrom: [...CANCELLABLE] });
  } catch (err) {
    if (err instanceof TransitionError) throw new UsageError(`run ${runId} of ${run.mapping} is ${run.status}: only a ${CANCELLABLE.join(' or ')} run can be cancelled`);
    throw err;
  }
  return { mapping: run.mapping, by: formatActor(actor) };
}
