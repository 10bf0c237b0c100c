import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_BASE_URL } from '../../destinations/hubspot/config.ts';
import { SalesforceConnection } from '../../destinations/salesforce/config.ts';
import { openConnection } from '../../destinations/salesforce/auth.ts';
import type { Settings } from '../config/settings.ts';
import type { Mapping } from '../config/mapping.ts';
import { maskText } from '../pii/mask.ts';
import { signatureFor, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../webhook/verify.ts';

/** What a destination answered to erasing one person. */
export interface EraseResult {
  status: 'done' | 'failed';
  requestId: string | null;
  detail: string;
}

export interface EraseTarget {
  key: string;
  mapping: Mapping;
  connectionName: string;
  connection: Record<string, unknown>;
  destinationId: string | null;
  erasureId: number;
  settings: Settings;
  signal: AbortSignal;
}

type Eraser = (t: EraseTarget) => Promise<EraseResult>;

const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);

async function call(url: string, init: RequestInit & { signal: AbortSignal }): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(url, init);
  return { status: res.status, text: await res.text(), headers: res.headers };
}

function failed(what: string, status: number, text: string): EraseResult {
  return { status: 'failed', requestId: null, detail: maskText(`${what} answered ${status}: ${text.slice(0, 300)}`) };
}

/**
 * HubSpot: POST /crm/v3/objects/contacts/gdpr-delete, by the contact id segsync got back or, without one, by
 * the match key (idProperty). Permanent, unlike a plain delete (restorable for 90 days); an e-mail HubSpot does not
 * know is blocklisted.
 */
const hubspot: Eraser = async (t) => {
  const base = (str(t.connection.base_url) ?? DEFAULT_BASE_URL).replace(/\/$/, '');
  const object = t.mapping.destination.object;
  if (object !== 'contacts') return { status: 'failed', requestId: null, detail: `HubSpot's GDPR delete covers contacts only, not ${object}: erase by hand` };
  const body = t.destinationId ? { objectId: t.destinationId } : { objectId: t.key, idProperty: t.mapping.destination.match_key };
  const r = await call(`${base}/crm/v3/objects/contacts/gdpr-delete`, {
    method: 'POST', signal: t.signal,
    headers: { authorization: `Bearer ${str(t.connection.access_token) ?? ''}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const requestId = r.headers.get('x-hubspot-correlation-id') ?? r.headers.get('x-request-id');
  if (r.status === 204 || r.status === 200) return { status: 'done', requestId, detail: t.destinationId ? `contact ${t.destinationId} permanently deleted` : `deleted by ${t.mapping.destination.match_key}` };
  if (r.status === 404) return { status: 'done', requestId, detail: 'HubSpot holds no such contact' };
  return failed('HubSpot gdpr-delete', r.status, r.text);
};

/** Salesforce: the record deleted through sObject Collections (it sits in the recycle bin up to 15 days). */
const salesforce: Eraser = async (t) => {
  const conn = await openConnection(SalesforceConnection.parse(t.connection));
  const object = t.mapping.destination.object;
  let id = t.destinationId;
  if (!id) {
    const q = await conn.query<{ Id: string }>(`SELECT Id FROM ${object} WHERE ${t.mapping.destination.match_key} = '${t.key.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`);
    id = q.records[0]?.Id ?? null;
    if (!id) return { status: 'done', requestId: null, detail: 'Salesforce holds no such record' };
  }
  const res = await conn.request<Array<{ id: string; success: boolean; errors: Array<{ statusCode: string; message: string }> }>>({
    method: 'DELETE', url: `${conn.instanceUrl}/services/data/v${conn.version}/composite/sobjects?ids=${encodeURIComponent(id)}&allOrNone=false`,
  });
  const r = res[0];
  if (r?.success) return { status: 'done', requestId: id, detail: `${object} ${id} deleted` };
  if (r?.errors.some((e) => e.statusCode === 'ENTITY_IS_DELETED' || e.statusCode === 'INVALID_CROSS_REFERENCE_KEY')) return { status: 'done', requestId: id, detail: 'already deleted' };
  return { status: 'failed', requestId: id, detail: maskText(`Salesforce delete: ${r?.errors.map((e) => `${e.statusCode}: ${e.message}`).join('; ') ?? 'no answer'}`) };
};

function regulationApi(t: EraseTarget): { url: string; token: string } | null {
  const c = t.settings.privacy.erasure[t.connectionName];
  return c ? { url: c.api_url.replace(/\/$/, ''), token: c.token } : null;
}

/** Segment Public API: a SUPPRESS_WITH_DELETE regulation for the userId (asynchronous; its regulateId is the request id). */
const segment: Eraser = async (t) => {
  const api = regulationApi(t);
  if (!api) return { status: 'failed', requestId: null, detail: `no regulation API for connection ${t.connectionName}: set privacy.erasure.${t.connectionName} {api_url, token}` };
  const r = await call(`${api.url}/regulations`, {
    method: 'POST', signal: t.signal,
    headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/vnd.segment.v1+json', accept: 'application/vnd.segment.v1+json' },
    body: JSON.stringify({ regulationType: 'SUPPRESS_WITH_DELETE', subjectType: 'USER_ID', subjectIds: [t.key] }),
  });
  if (r.status >= 200 && r.status < 300) {
    const id = (JSON.parse(r.text) as { data?: { regulateId?: string } }).data?.regulateId ?? null;
    return { status: 'done', requestId: id, detail: 'SUPPRESS_WITH_DELETE regulation filed' };
  }
  return failed('Segment regulations', r.status, r.text);
};

/** RudderStack User Suppression API: a suppress_with_delete regulation for the userId. */
const rudderstack: Eraser = async (t) => {
  const api = regulationApi(t);
  if (!api) return { status: 'failed', requestId: null, detail: `no regulation API for connection ${t.connectionName}: set privacy.erasure.${t.connectionName} {api_url, token}` };
  const r = await call(`${api.url}/v2/regulations`, {
    method: 'POST', signal: t.signal,
    headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ regulationType: 'suppress_with_delete', users: [{ userId: t.key }] }),
  });
  if (r.status >= 200 && r.status < 300) {
    const parsed = JSON.parse(r.text || '{}') as { id?: string } | Array<{ id?: string }>;
    const id = (Array.isArray(parsed) ? parsed[0]?.id : parsed.id) ?? null;
    return { status: 'done', requestId: id, detail: 'suppress_with_delete regulation filed' };
  }
  return failed('RudderStack regulations', r.status, r.text);
};

/** Webhook: a signed erase event (same signature as change batches); the receiver answers 2xx once it erased. */
const webhook: Eraser = async (t) => {
  const body = JSON.stringify({ type: 'erase', mapping: t.mapping.name, key: t.key, erasure_id: t.erasureId, at: new Date().toISOString() });
  const ts = String(Math.floor(Date.now() / 1000));
  const extra = (t.connection.headers ?? {}) as Record<string, string>;
  const r = await call(String(t.connection.url), {
    method: 'POST', signal: t.signal, body,
    headers: { ...extra, 'content-type': 'application/json', 'user-agent': 'segsync', 'x-segsync-mapping': t.mapping.name, 'x-segsync-event': 'erase',
      'idempotency-key': `erase-${t.erasureId}-${t.mapping.name}`, [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: signatureFor(String(t.connection.secret ?? ''), ts, body) },
  });
  if (r.status >= 200 && r.status < 300) return { status: 'done', requestId: r.headers.get('x-request-id') ?? `erase-${t.erasureId}-${t.mapping.name}`, detail: `receiver answered ${r.status}` };
  return failed('webhook erase event', r.status, r.text);
};

/** File exports: a tombstone line in <directory>/<mapping>/tombstones.ndjson for whoever loads the files. */
const file: Eraser = async (t) => {
  const dir = path.resolve(String(t.connection.directory), t.mapping.name);
  await mkdir(dir, { recursive: true });
  const line = JSON.stringify({ type: 'tombstone', [t.mapping.destination.match_key]: t.key, erasure_id: t.erasureId, erased_at: new Date().toISOString() });
  await appendFile(path.join(dir, 'tombstones.ndjson'), line + '\n');
  return { status: 'done', requestId: `tombstone-${t.erasureId}`, detail: `tombstone in ${path.join(t.mapping.name, 'tombstones.ndjson')}` };
};

export const ERASERS: Record<string, Eraser> = { hubspot, salesforce, segment, rudderstack, webhook, file };
