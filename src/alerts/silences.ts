import type pg from 'pg';
import { audit } from '../audit/trail.ts';
import { parseMatcher } from '../config/alerts.ts';
import { durationMs } from '../daemon/duration.ts';
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

export interface SilenceProblem {
  code: 'BAD_MATCHER' | 'BAD_DURATION' | 'BAD_COMMENT';
  field: 'match' | 'for' | 'comment';
  message: string;
}

/**
 * What is wrong with a silence as a person wrote it (CLI flags or an API body), or null: at least one valid
 * matcher, a positive duration such as 2h, a comment saying why. Both front ends refuse with this message.
 */
export function silenceProblem(s: { matchers: string[]; for: string | undefined; comment: string | undefined }): SilenceProblem | null {
  if (!s.matchers.length) return { code: 'BAD_MATCHER', field: 'match', message: 'a silence needs at least one matcher, e.g. mapping=crm-contacts' };
  for (const m of s.matchers) {
    try {
      parseMatcher(m);
    } catch (err) {
      return { code: 'BAD_MATCHER', field: 'match', message: (err as Error).message };
    }
  }
  if (!s.for || !/^\d+(ms|s|m|h|d)$/.test(s.for) || durationMs(s.for) <= 0) return { code: 'BAD_DURATION', field: 'for', message: `the duration must be such as 2h, 30m or 1d (got '${s.for ?? ''}')` };
  if (!s.comment?.trim()) return { code: 'BAD_COMMENT', field: 'comment', message: 'a silence needs a comment saying why' };
  return null;
}
