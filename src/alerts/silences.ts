import type pg from 'pg';
import { audit } from '../audit/trail.ts';
import { withTransaction } from '../db/transaction.ts';
import { formatActor, type Actor } from '../state/actor.ts';
import { addSilence, expireSilence, type Silence } from '../state/alerts.ts';

/**
 * Silences as people make them (CLI and API): the silence and its audit row in one transaction, so a silence
 * nobody can account for never exists.
 */
export async function createSilence(pool: pg.Pool, schema: string, actor: Actor, s: { matchers: string[]; forMs: number; comment: string }): Promise<Silence> {
  return withTransaction(pool, async (client) => {
    const silence = await addSilence(client, schema, { ...s, author: formatActor(actor) });
    await audit(client, schema, { actor, action: 'silence.added', subject: `silence:${silence.id}`, details: { matchers: silence.matchers, ends_at: silence.endsAt.toISOString(), comment: silence.comment } });
    return silence;
  });
}

/** Ends a silence now; false when no such silence is in force (nothing is recorded then). */
export async function endSilence(pool: pg.Pool, schema: string, actor: Actor, id: number): Promise<boolean> {
  return withTransaction(pool, async (client) => {
    if (!(await expireSilence(client, schema, id, formatActor(actor)))) return false;
    await audit(client, schema, { actor, action: 'silence.expired', subject: `silence:${id}` });
    return true;
  });
}
