import { UsageError } from '../errors.ts';
import type { Actor } from '../state/actor.ts';
import type { Db } from '../state/transition.ts';
import { audit } from './trail.ts';

/**
 * Every view of unmasked personal data is an access event with its reason (`pii.viewed`); call it before
 * showing the data. The keys are kept as pseudonyms. A view without a reason is refused.
 */
export async function auditPiiView(db: Db, schema: string, o: { actor: Actor; subject: string; reason: string | undefined; keys?: string[]; fields?: string[] }): Promise<void> {
  if (!o.reason?.trim()) throw new UsageError('seeing unmasked personal data needs a reason (it is recorded in the audit trail)');
  await audit(db, schema, { actor: o.actor, action: 'pii.viewed', subject: o.subject, details: { reason: o.reason, keys: o.keys ?? [], fields: o.fields ?? [] } });
}
