import { z } from 'zod';

/** Requests and responses of the control routes (forget, audit, alerts, silences, tokens): src/api/control.ts. */

const Time = z.iso.datetime({ offset: true }).describe('ISO 8601 time');
const NullableTime = Time.nullable();
const Limit = z.string().regex(/^[0-9]+$/, 'a whole number').optional().describe('page size, 1-500 (default 50)');
const Cursor = z.string().optional().describe('nextCursor of the previous page');

export const ForgetBody = z.strictObject({
  mapping: z.string().min(1).optional().describe('the mapping the key is from (checked to exist); the erasure still covers every mapping, as segsync forget does'),
  key: z.string().min(1).describe('the record key of the person'),
  reason: z.string().trim().min(1, 'a reason is required (the request\'s reference; it is kept in the audit trail)'),
});

export const ForgetReport = z.object({
  erasureId: z.number().int(),
  pseudonym: z.string().describe('the keyed pseudonym the audit trail knows the person by'),
  done: z.boolean().describe('erased in every destination; false while a destination is not done (segsync forget --pending retries)'),
  dueAt: Time,
  nulled: z.number().int().describe('ledger rows whose payloads were nulled (hashes kept)'),
  steps: z.array(z.object({ mapping: z.string(), connection: z.string(), type: z.string(), status: z.enum(['done', 'failed']), requestId: z.string().nullable(), detail: z.string().nullable() })),
}).meta({ id: 'ForgetReport' });

export const AuditQuery = z.strictObject({
  action: z.string().optional().describe('only actions starting with this, e.g. run. or pii.'),
  subject: z.string().optional().describe('only this subject, e.g. run:42'),
  limit: Limit,
  cursor: Cursor,
});

export const AuditList = z.object({
  rows: z.array(z.object({
    seq: z.number().int(), at: Time, actor: z.string(), action: z.string(), subject: z.string().nullable(),
    details: z.unknown().describe('as stored: keys are keyed pseudonyms, payloads hashes'), leafHash: z.string(), chainHash: z.string(),
  })),
  nextCursor: z.string().nullable(),
}).meta({ id: 'AuditList' });

export const AuditVerify = z.object({
  ok: z.boolean(),
  rows: z.number().int(), headSeq: z.number().int(), checkpoints: z.number().int(), runsChecked: z.number().int(), unsigned: z.number().int(),
  receiptsChecked: z.boolean().describe('false without the pseudonym key the trail was written with'),
  firstProblem: z.object({ kind: z.string(), seq: z.number().int(), message: z.string() }).nullable().describe('the first row edited, deleted, inserted or reordered (or a receipts/checkpoint mismatch)'),
  problems: z.array(z.object({ kind: z.string(), seq: z.number().int(), message: z.string() })),
}).meta({ id: 'AuditVerify' });

const Delivery = z.object({ id: z.number().int(), channel: z.string(), action: z.string(), status: z.string(), attempts: z.number().int(), lastError: z.string().nullable(), sentAt: NullableTime, nextAt: Time });

export const AlertList = z.object({
  incidents: z.array(z.object({
    id: z.number().int(), kind: z.string(), mapping: z.string().nullable(), labels: z.record(z.string(), z.string()), severity: z.string(), state: z.string(),
    firstAt: Time, lastEventAt: Time, lastRunId: z.number().int().nullable(), lastMessage: z.string(), events: z.number().int(), nextAt: NullableTime,
    notifiedAt: NullableTime, heldBy: z.string().nullable().describe('the silence or inhibition holding it back'), resolvedAt: NullableTime, deliveries: z.array(Delivery),
  })),
  failed: z.array(z.object({ id: z.number().int(), incident: z.number().int().nullable(), channel: z.string(), action: z.string(), attempts: z.number().int(), lastError: z.string().nullable() })),
}).meta({ id: 'AlertList' });

export const AlertsQuery = z.strictObject({ recent: z.string().regex(/^\d+(ms|s|m|h|d)$/, 'a duration such as 24h').optional().describe('also incidents closed within this long') });

export const Silence = z.object({
  id: z.number().int(), matchers: z.array(z.string()), startsAt: Time, endsAt: Time, author: z.string(), comment: z.string(), createdAt: Time,
  expiredAt: NullableTime, expiredBy: z.string().nullable(),
}).meta({ id: 'Silence' });

export const SilenceList = z.object({ silences: z.array(Silence) });
export const SilencesQuery = z.strictObject({ all: z.enum(['1', 'true']).optional().describe('include expired silences') });

export const SilenceBody = z.strictObject({
  matchers: z.array(z.string()).describe('label=value, label!=value, label=~regex or label!~regex; all must hold'),
  for: z.string().describe('how long, e.g. 2h, 30m, 1d'),
  comment: z.string().describe('why (recorded with the caller\'s identity)'),
});

export const SilenceIdParam = z.object({ id: z.string().regex(/^[1-9][0-9]{0,17}$/, 'a silence id: a positive integer') });
export const TokenIdParam = z.object({ id: z.string().min(1).describe('the token id as listed (ssk_ and 8 characters)') });

export const Token = z.object({
  id: z.string(), name: z.string(), role: z.string(), createdAt: Time, createdBy: z.string(), expiresAt: NullableTime, lastUsedAt: NullableTime,
  revokedAt: NullableTime, revokedBy: z.string().nullable(),
}).meta({ id: 'Token' });

export const TokenList = z.object({ tokens: z.array(Token) });

export const TokenBody = z.strictObject({
  name: z.string().trim().min(1, 'give the token a name saying who or what uses it'),
  role: z.string().describe('viewer, operator, approver, editor, auditor or admin'),
  expires: z.string().optional().describe('lifetime such as 12h, 30d, 8w (default: none)'),
});

export const TokenCreated = z.object({ token: z.string().describe('the token: shown this once, only its hash is kept'), row: Token });

export const RecordQuery = z.strictObject({
  unmasked: z.enum(['1', 'true']).optional().describe('show the values unmasked: needs the permission pii and a reason; the view is audited (pii.viewed)'),
  reason: z.string().optional().describe('why the unmasked view is needed (kept in the audit trail)'),
});
