import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Identity, Permission } from '../auth/permissions.ts';
import { maskDeep } from '../log.ts';
import { ApiError } from './errors.ts';
import * as C from './control-schemas.ts';
import * as control from './control.ts';
import * as S from './schemas.ts';
import * as svc from './service.ts';

/**
 * The REST API's routes, as data: method, path, the permission each needs, request and response schemas.
 * fastify routes and the OpenAPI document are both generated from this table.
 */

export interface ApiRequest {
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  identity: Identity;
}

export interface RouteDef {
  method: 'GET' | 'POST';
  /** OpenAPI style, under /api/v1: /runs/{id}. */
  path: string;
  permission: Permission;
  summary: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** Status -> response body schema; the first is the success. */
  responses: Record<number, z.ZodType>;
  handler(cp: svc.ControlPlane, req: ApiRequest): Promise<Answer>;
}

/**
 * What a handler answers. Bodies are masked on the way out (svc.shown); `raw` skips that for the one answer
 * that is unmasked on purpose (a record with unmasked=1, audited first), and `reveal` adds fields after masking
 * (a new token, shown once).
 */
export interface Answer {
  status: number;
  body: unknown;
  raw?: boolean;
  reveal?: Record<string, unknown>;
}

const ok = (body: unknown, status = 200): Answer => ({ status, body });
const id = (req: ApiRequest) => Number(req.params.id);

export const API_PREFIX = '/api/v1';

export const ROUTES: RouteDef[] = [
  { method: 'GET', path: '/mappings', permission: 'read', summary: 'every mapping: config summary, schedule, next run, freshness, last run, a waiting run (held first)',
    responses: { 200: S.MappingList }, handler: async (cp) => ok({ mappings: await svc.mappings(cp) }) },
  { method: 'GET', path: '/mappings/{name}', permission: 'read', summary: 'one mapping', params: S.NameParam,
    responses: { 200: S.MappingSummary, 404: S.ErrorBody }, handler: async (cp, r) => ok((await svc.mappings(cp, r.params.name))[0]) },
  { method: 'POST', path: '/mappings/{name}/runs', permission: 'run', summary: 'trigger a run (202, delivered in the background) or a dry run (200, nothing written or sent)',
    params: S.NameParam, body: S.TriggerBody, responses: { 202: S.TriggerAccepted, 200: S.DryRun, 404: S.ErrorBody, 409: S.ErrorBody, 422: S.ErrorBody },
    handler: async (cp, r) => {
      const t = await svc.trigger(cp, r.params.name!, (r.body as { dryRun: boolean }).dryRun, r.identity);
      return ok(t.body, t.dry ? 200 : 202);
    } },
  { method: 'GET', path: '/runs', permission: 'read', summary: 'runs, newest first, filtered, cursor-paged', query: S.RunsQuery,
    responses: { 200: S.RunList, 400: S.ErrorBody }, handler: async (cp, r) => ok(await svc.runs(cp, r.query)) },
  { method: 'GET', path: '/runs/{id}', permission: 'read', summary: 'one run: counts per op, receipts per op and status, guardrail verdicts, errors by code, segment transitions, state history',
    params: S.IdParam, responses: { 200: S.RunDetail, 404: S.ErrorBody }, handler: async (cp, r) => ok(await svc.run(cp, id(r))) },
  { method: 'GET', path: '/runs/{id}/items', permission: 'read', summary: 'the run\'s planned items by key (before -> after, state), cursor-paged', params: S.IdParam, query: S.ItemsQuery,
    responses: { 200: S.ItemList, 400: S.ErrorBody, 404: S.ErrorBody }, handler: async (cp, r) => ok(await svc.runItems(cp, id(r), r.query as never)) },
  { method: 'POST', path: '/runs/{id}/approve', permission: 'approve', summary: 'approve a held run (and deliver it now unless deliver: false); 409 when it is not held', params: S.IdParam, body: S.ApproveBody,
    responses: { 200: S.Decision, 403: S.ErrorBody, 404: S.ErrorBody, 409: S.ErrorBody }, handler: async (cp, r) => {
      const b = r.body as { reason: string; deliver: boolean };
      return ok(await svc.approve(cp, id(r), b.reason, b.deliver, r.identity));
    } },
  { method: 'POST', path: '/runs/{id}/reject', permission: 'approve', summary: 'reject a held run: nothing of it is sent', params: S.IdParam, body: S.ReasonBody,
    responses: { 200: S.Decision, 403: S.ErrorBody, 404: S.ErrorBody, 409: S.ErrorBody }, handler: async (cp, r) => ok(await svc.reject(cp, id(r), (r.body as { reason: string }).reason, r.identity)) },
  { method: 'POST', path: '/runs/{id}/cancel', permission: 'run', summary: 'cancel a held or approved run', params: S.IdParam, body: S.ReasonBody,
    responses: { 200: S.Decision, 404: S.ErrorBody, 409: S.ErrorBody }, handler: async (cp, r) => ok(await svc.cancel(cp, id(r), (r.body as { reason: string }).reason, r.identity)) },
  { method: 'GET', path: '/records/{mapping}/{key}', permission: 'read', summary: 'one record: what each run sent (before -> after), receipts with request ids, read-back verdicts, segment history; with unmasked=1&reason=... unmasked (needs the permission pii too; audited as pii.viewed)',
    params: S.RecordParams, query: C.RecordQuery, responses: { 200: S.RecordTimeline, 403: S.ErrorBody, 404: S.ErrorBody }, handler: async (cp, r) => {
      if (r.query.unmasked === undefined) return ok(await svc.record(cp, r.params.mapping!, r.params.key!));
      return { status: 200, body: await control.unmaskedRecord(cp, r.params.mapping!, r.params.key!, r.query.reason, r.identity), raw: true };
    } },
  { method: 'GET', path: '/receipts', permission: 'read', summary: 'per-record receipts, newest run first, with the latest read-back verdict (segsync receipts)', query: S.ReceiptsQuery,
    responses: { 200: S.ReceiptList, 400: S.ErrorBody }, handler: async (cp, r) => ok(await svc.receipts(cp, r.query)) },
  { method: 'GET', path: '/events', permission: 'read', summary: 'events, newest first, filtered, cursor-paged', query: S.EventsQuery,
    responses: { 200: S.EventList, 400: S.ErrorBody }, handler: async (cp, r) => ok(await svc.events(cp, r.query)) },
  { method: 'GET', path: '/monitors', permission: 'read', summary: 'each monitor\'s latest evaluation', responses: { 200: S.MonitorList }, handler: async (cp) => ok(await svc.monitors(cp)) },
  { method: 'GET', path: '/segments', permission: 'read', summary: 'segment sizes per snapshot, the latest month-to-month flows, changed share per run of a mapping', query: S.SegmentsQuery,
    responses: { 200: S.Segments, 400: S.ErrorBody }, handler: async (cp, r) => ok(await svc.segments(cp, r.query)) },
  { method: 'POST', path: '/forget', permission: 'erase', summary: 'erase a person as segsync forget does: suppressed from every future run, ledger payloads nulled, erased in every destination; answers per destination with request ids',
    body: C.ForgetBody, responses: { 200: C.ForgetReport, 400: S.ErrorBody, 404: S.ErrorBody }, handler: async (cp, r) => ok(await control.forgetPerson(cp, r.body as { key: string; reason: string; mapping?: string }, r.identity)) },
  { method: 'GET', path: '/audit', permission: 'audit', summary: 'the audit trail, newest first, cursor-paged (keys are pseudonyms, payloads hashes)', query: C.AuditQuery,
    responses: { 200: C.AuditList, 400: S.ErrorBody }, handler: async (cp, r) => ok(await control.auditTrail(cp, r.query)) },
  { method: 'GET', path: '/audit/verify', permission: 'audit', summary: 'recompute the trail (leaves, chain, receipts roots, checkpoints): ok, or the first row edited, deleted, inserted or reordered',
    responses: { 200: C.AuditVerify }, handler: async (cp) => ok(await control.auditVerify(cp)) },
  { method: 'GET', path: '/alerts', permission: 'read', summary: 'open alert incidents with the state of their deliveries, and deliveries that failed for good (segsync alerts)', query: C.AlertsQuery,
    responses: { 200: C.AlertList, 400: S.ErrorBody }, handler: async (cp, r) => ok(await control.alerts(cp, r.query)) },
  { method: 'GET', path: '/silences', permission: 'read', summary: 'silences in force (all=1: expired ones too)', query: C.SilencesQuery,
    responses: { 200: C.SilenceList, 400: S.ErrorBody }, handler: async (cp, r) => ok(await control.silences(cp, r.query)) },
  { method: 'POST', path: '/silences', permission: 'silence', summary: 'add a silence (audited: silence.added); a bad matcher is 400 BAD_MATCHER, a bad duration 400 BAD_DURATION', body: C.SilenceBody,
    responses: { 201: C.Silence, 400: S.ErrorBody }, handler: async (cp, r) => ok(await control.addSilence(cp, r.body as { matchers: string[]; for: string; comment: string }, r.identity), 201) },
  { method: 'POST', path: '/silences/{id}/expire', permission: 'silence', summary: 'end a silence now (audited: silence.expired)', params: C.SilenceIdParam,
    responses: { 200: C.Silence, 404: S.ErrorBody }, handler: async (cp, r) => ok(await control.expireSilence(cp, id(r), r.identity)) },
  { method: 'GET', path: '/tokens', permission: 'admin', summary: 'the API tokens: id, name, role, created, expiry, last use, revoked (never the token)',
    responses: { 200: C.TokenList }, handler: async (cp) => ok(await control.tokens(cp)) },
  { method: 'POST', path: '/tokens', permission: 'admin', summary: 'make an API token with one role; the answer shows it once, only its hash is kept (audited: token.created)', body: C.TokenBody,
    responses: { 201: C.TokenCreated, 400: S.ErrorBody }, handler: async (cp, r) => {
      const t = await control.newToken(cp, r.body as { name: string; role: string; expires?: string }, r.identity);
      return { status: 201, body: { token: '', row: t.row }, reveal: { token: t.token } };
    } },
  { method: 'POST', path: '/tokens/{id}/revoke', permission: 'admin', summary: 'revoke a token by its id (audited: token.revoked)', params: C.TokenIdParam,
    responses: { 200: C.Token, 404: S.ErrorBody }, handler: async (cp, r) => ok(await control.revokeToken(cp, r.params.id!, r.identity)) },
];

/** 400 from a zod failure: which parameter, what is wrong. */
function invalid(where: string, err: z.ZodError): ApiError {
  const issues = err.issues.map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message }));
  const unknownKeys = err.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys : []));
  return new ApiError(400, 'BAD_REQUEST', `${where}: ${issues.map((i) => `${i.path}: ${i.message}${unknownKeys.length ? ` (${unknownKeys.join(', ')})` : ''}`).join('; ')}`, { issues });
}

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  return reply.code(err.status).type('application/json').send({ error: { code: err.code, message: String(maskDeep(err.message)), ...(maskDeep(err.details) as object) } });
}

/** Registers every route of the table on `server` (inside the control plane's plugin, whose hook checks permissions). */
export function registerApi(server: FastifyInstance, cp: svc.ControlPlane, identityOf: (req: FastifyRequest) => Identity): void {
  for (const def of ROUTES) {
    server.route({
      method: def.method,
      url: API_PREFIX + def.path.replace(/\{(\w+)\}/g, ':$1'),
      config: { permission: def.permission, kind: 'api' },
      handler: async (request, reply) => {
        const parse = <T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T | undefined => {
          if (!schema) return undefined;
          const r = schema.safeParse(value ?? undefined);
          if (!r.success) throw invalid(where, r.error);
          return r.data;
        };
        const req: ApiRequest = {
          params: (parse(def.params, request.params, 'path') ?? {}) as Record<string, string>,
          query: (parse(def.query, request.query ?? {}, 'query') ?? {}) as Record<string, string>,
          body: parse(def.body, request.body, 'body'),
          identity: identityOf(request),
        };
        const res = await def.handler(cp, req);
        const body = res.raw ? res.body : svc.shown(cp, res.body);
        return reply.code(res.status).send(res.reveal ? { ...(body as object), ...res.reveal } : body);
      },
    });
  }
}
