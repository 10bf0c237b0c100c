import { createSilence, endSilence, silenceProblem } from '../alerts/silences.ts';
import { auditPiiView } from '../audit/access.ts';
import { readAudit, verifyHere } from '../audit/read.ts';
import { identityAllows, type Identity } from '../auth/permissions.ts';
import { createToken, parseExpiry, revoke } from '../auth/tokens.ts';
import { durationMs } from '../daemon/duration.ts';
import { quoteIdent } from '../db/sql.ts';
import { forget } from '../erasure/forget.ts';
import { UsageError } from '../errors.ts';
import { formatActor } from '../state/actor.ts';
import { listDeliveries, listGroups, listSilences } from '../state/alerts.ts';
import { listTokens } from '../state/tokens.ts';
import { ensureState } from '../sync/run.ts';
import { ApiError, badRequest, decodeCursor, encodeCursor, notFound } from './errors.ts';
import { record, type ControlPlane } from './service.ts';

/**
 * The control routes (erasure, the audit trail, alerts and silences, tokens, the unmasked record view): the same
 * functions the CLI calls (src/erasure, src/audit, src/alerts, src/auth), with the caller's identity as actor.
 */

function state(cp: ControlPlane) {
  const app = cp.app();
  return { app, db: app.warehouse.pool, schema: app.config.settings.state.schema };
}

/** A UsageError of a shared function is the caller's input: a 400 with `code`. */
function asBadRequest(code: string, field?: string) {
  return (err: unknown): never => {
    if (err instanceof UsageError) throw badRequest(code, err.message, field ? { parameter: field } : {});
    throw err;
  };
}

export async function forgetPerson(cp: ControlPlane, b: { mapping?: string | undefined; key: string; reason: string }, identity: Identity) {
  const { app } = state(cp);
  if (b.mapping !== undefined && !app.config.mappings.some((m) => m.value.name === b.mapping)) {
    throw notFound('mapping', b.mapping, `mappings: ${app.config.mappings.map((m) => m.value.name).join(', ') || '(none)'}`);
  }
  return forget(app, b.key, { reason: b.reason, actor: identity.actor, ...(cp.signal ? { signal: cp.signal } : {}) }).catch(asBadRequest('BAD_REQUEST'));
}

const pageSize = (limit: string | undefined) => {
  if (limit === undefined) return 50;
  const n = Number(limit);
  if (!Number.isInteger(n) || n < 1 || n > 500) throw badRequest('BAD_REQUEST', `limit ${limit} is out of range: 1-500`, { parameter: 'limit', value: limit });
  return n;
};

export async function auditTrail(cp: ControlPlane, q: { action?: string; subject?: string; limit?: string; cursor?: string }) {
  const { app, db, schema } = state(cp);
  const limit = pageSize(q.limit);
  const beforeSeq = decodeCursor(q.cursor, 'id') as number | undefined;
  await ensureState(app);
  const rows = await readAudit(db, schema, { limit: limit + 1, action: q.action || undefined, subject: q.subject || undefined, beforeSeq });
  const page = rows.slice(0, limit);
  return {
    rows: page.map((r) => ({ seq: r.seq, at: r.at, actor: `${r.actorType}:${r.actorId}`, action: r.action, subject: r.subject, details: (JSON.parse(r.entry) as { details?: unknown }).details ?? null, leafHash: r.leafHash, chainHash: r.chainHash })),
    nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.seq) : null,
  };
}

export async function auditVerify(cp: ControlPlane) {
  const { app, db, schema } = state(cp);
  await ensureState(app);
  const r = await verifyHere(db, schema);
  return { ok: r.problems.length === 0, rows: r.rows, headSeq: r.headSeq, checkpoints: r.checkpoints, runsChecked: r.runsChecked, unsigned: r.unsigned, receiptsChecked: r.receiptsChecked, firstProblem: r.problems[0] ? { ...r.problems[0] } : null, problems: r.problems };
}

export async function alerts(cp: ControlPlane, q: { recent?: string }) {
  const { app, db, schema } = state(cp);
  await ensureState(app);
  const s = quoteIdent(schema);
  const groups = await listGroups(db, s, { closedWithinMs: q.recent ? durationMs(q.recent) : 0 });
  const failed = await listDeliveries(db, s, { status: 'failed' });
  return {
    incidents: groups.map((g) => ({ id: g.id, kind: g.kind, mapping: g.mapping, labels: g.labels, severity: g.severity, state: g.state, firstAt: g.firstAt, lastEventAt: g.lastEventAt, lastRunId: g.lastRunId, lastMessage: g.lastMessage, events: g.events, nextAt: g.nextAt, notifiedAt: g.notifiedAt, heldBy: g.heldBy, resolvedAt: g.resolvedAt, deliveries: g.deliveries })),
    failed: failed.map((d) => ({ id: d.id, incident: d.groupId, channel: d.channel, action: d.action, attempts: d.attempts, lastError: d.lastError })),
  };
}

export async function silences(cp: ControlPlane, q: { all?: string }) {
  const { app, db, schema } = state(cp);
  await ensureState(app);
  return { silences: await listSilences(db, quoteIdent(schema), { all: q.all !== undefined }) };
}

export async function addSilence(cp: ControlPlane, b: { matchers: string[]; for: string; comment: string }, identity: Identity) {
  const problem = silenceProblem({ matchers: b.matchers, for: b.for, comment: b.comment });
  if (problem) throw badRequest(problem.code, problem.message, { parameter: `body.${problem.field === 'match' ? 'matchers' : problem.field}` });
  const { app, db, schema } = state(cp);
  await ensureState(app);
  return createSilence(db, quoteIdent(schema), identity.actor, { matchers: b.matchers, forMs: durationMs(b.for), comment: b.comment.trim() });
}

export async function expireSilence(cp: ControlPlane, id: number, identity: Identity) {
  const { app, db, schema } = state(cp);
  await ensureState(app);
  if (!(await endSilence(db, quoteIdent(schema), identity.actor, id))) throw notFound('silence', id, 'no such silence in force: GET /api/v1/silences?all=1 lists them all');
  const s = (await listSilences(db, quoteIdent(schema), { all: true })).find((x) => x.id === id)!;
  return s;
}

export async function tokens(cp: ControlPlane) {
  const { app, db, schema } = state(cp);
  await ensureState(app);
  return { tokens: await listTokens(db, schema) };
}

export async function newToken(cp: ControlPlane, b: { name: string; role: string; expires?: string | undefined }, identity: Identity) {
  const { app, db, schema } = state(cp);
  const expiresAt = b.expires === undefined ? null : (() => {
    try {
      return parseExpiry(b.expires);
    } catch (err) {
      throw badRequest('BAD_EXPIRY', (err as Error).message.replace('--expires', 'expires'), { parameter: 'body.expires' });
    }
  })();
  await ensureState(app);
  return createToken(db, schema, { role: b.role, name: b.name, expiresAt, actor: identity.actor })
    .catch((err: unknown) => asBadRequest(/role/.test((err as Error).message) ? 'BAD_ROLE' : 'BAD_REQUEST')(err instanceof UsageError ? new UsageError(err.message.replace(/^--(\w+)/, '$1')) : err));
}

export async function revokeToken(cp: ControlPlane, id: string, identity: Identity) {
  const { app, db, schema } = state(cp);
  await ensureState(app);
  const live = (await listTokens(db, schema)).find((t) => t.id === id && !t.revokedAt);
  if (!live) throw notFound('token', id, 'no live token with this id: GET /api/v1/tokens lists them');
  await revoke(db, schema, id, identity.actor).catch((err: unknown) => {
    if (err instanceof UsageError) throw notFound('token', id);
    throw err;
  });
  return (await listTokens(db, schema)).find((t) => t.id === id)!;
}

/**
 * A record unmasked: the caller needs `pii` besides `read` and a reason; the view is recorded (pii.viewed,
 * the key as a pseudonym) before anything is shown.
 */
export async function unmaskedRecord(cp: ControlPlane, mapping: string, keyOrRef: string, reason: string | undefined, identity: Identity) {
  if (!identityAllows(identity, 'pii')) throw new ApiError(403, 'FORBIDDEN', `${formatActor(identity.actor)} lacks the permission 'pii' (unmasked=1 shows personal data)`, { permission: 'pii' });
  if (!reason?.trim()) throw badRequest('REASON_REQUIRED', 'unmasked=1 needs reason=...: every view of unmasked personal data is recorded with its reason', { parameter: 'reason' });
  const body = await record(cp, mapping, keyOrRef);
  const { db, schema } = state(cp);
  await auditPiiView(db, schema, { actor: identity.actor, subject: `record:${mapping}`, reason, keys: [body.key] });
  return body;
}
