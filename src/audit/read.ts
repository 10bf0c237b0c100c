import type { KeyObject } from 'node:crypto';
import { listAudit, type AuditRow } from '../state/audit.ts';
import type { Db } from '../state/transition.ts';
import { getSigningKey, hasPseudonymKey, hasSigningKey } from './keys.ts';
import { sealAudit } from './trail.ts';
import { verifyTrail, type VerifyReport } from './verify.ts';

/**
 * Reading and verifying the trail as `segsync audit log|verify` and the API (GET /api/v1/audit, /audit/verify)
 * both do: committed pending actions are sealed into the chain first, so what is read is what was done.
 */

export async function readAudit(db: Db, schema: string, o: { limit: number; action?: string | undefined; subject?: string | undefined; beforeSeq?: number | undefined }): Promise<AuditRow[]> {
  await sealAudit(db, schema);
  return listAudit(db, schema, o);
}

/**
 * Verifies with the keys this machine holds: never makes new ones (they would not match). Receipts roots are
 * checked only with the pseudonym key the trail was written with (`receipts: false` in the answer otherwise).
 */
export async function verifyHere(db: Db, schema: string, o: { publicKey?: KeyObject | undefined; extra?: Array<{ note: string; where: string }> } = {}): Promise<VerifyReport & { receiptsChecked: boolean }> {
  const publicKey = o.publicKey ?? (hasSigningKey() ? getSigningKey().publicKey : undefined);
  const receipts = hasPseudonymKey();
  if (receipts) await sealAudit(db, schema);
  const report = await verifyTrail(db, schema, { publicKey, extra: o.extra ?? [], receipts });
  return { ...report, receiptsChecked: receipts };
}
