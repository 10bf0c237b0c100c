import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tokenEndpoint, type AuthConfig } from './auth.ts';
import { BulkIngest } from './bulk.ts';
import { apiError, deleteCollection, updateCollection, upsertCollection, type CollectionsFaults, type Reply } from './collections.ts';
import { DeserializeError, Org, type SfRecord } from './org.ts';
import { describeObject, defaultObjects, type SfObject } from './schema.ts';
import { QueryCursors, SoqlError } from './soql.ts';

/**
 * A Salesforce org over real HTTP on 127.0.0.1 (port 0): OAuth, describe, SOQL, sObject Collections, Bulk 2.0
 * ingest, the daily API budget with `Sforce-Limit-Info`, seeded faults, and an inspection/control surface
 * (methods for in-process tests, the same under /__emulator/ over HTTP for spawned processes).
 */

export interface EmulatorOptions {
  objects?: SfObject[];
  auth?: Partial<AuthConfig>;
  dailyLimit?: number;
  /** Highest API version the org answers (a newer one in the URL is NOT_FOUND, as on a real org). */
  maxApiVersion?: number;
  bulkProcessingMs?: number;
  /** Added to every API response (a slow org, so a test can stop a run midway). */
  latencyMs?: number;
}

export interface LoggedRequest {
  method: string;
  path: string;
  endpoint: string;
  /** The HTTP status answered; 0 when the connection was reset instead (resetNext). */
  status: number;
  records: number;
}

const LOG_CAP = 20_000;

function endpointOf(method: string, rest: string): string {
  if (/^sobjects\/[^/]+\/describe$/.test(rest)) return 'describe';
  if (/^composite\/sobjects\/[^/]+\/[^/]+$/.test(rest)) return 'collections.upsert';
  if (rest === 'composite/sobjects') return method === 'DELETE' ? 'collections.delete' : 'collections.update';
  if (/^sobjects\/[^/]+\/[^/]+\/[^/]+$/.test(rest)) return 'sobject.upsert';
  if (rest === 'query') return 'query';
  if (rest.startsWith('query/')) return 'query.more';
  if (rest === 'limits') return 'limits';
  if (rest === 'jobs/ingest') return 'bulk.create';
  if (/^jobs\/ingest\/[^/]+\/batches$/.test(rest)) return 'bulk.upload';
  if (/^jobs\/ingest\/[^/]+\/(successfulResults|failedResults|unprocessedrecords)\/?$/.test(rest)) return 'bulk.results';
  if (/^jobs\/ingest\/[^/]+$/.test(rest)) return method === 'PATCH' ? 'bulk.close' : 'bulk.status';
  return 'other';
}

export class SalesforceEmulator {
  readonly org: Org;
  readonly bulk: BulkIngest;
  readonly faults: CollectionsFaults = { locked: new Map() };
  readonly auth: AuthConfig;
  readonly log: LoggedRequest[] = [];
  readonly counts = new Map<string, number>();
  url = '';
  dailyLimit: number;
  used = 0;
  tokenGrants = 0;
  latencyMs: number;
  private readonly tokens = new Set<string>();
  private expireAfter: number | null = null;
  private expireAt: string | null = null;
  private failures: Array<{ status: number; endpoint?: string; left: number }> = [];
  private resets: Array<{ endpoint?: string; left: number }> = [];
  private hooks: Array<{ endpoint: string; fn: () => void }> = [];
  private readonly cursors: QueryCursors;
  private readonly maxApiVersion: number;
  private server: Server | null = null;

  constructor(opts: EmulatorOptions = {}) {
    this.org = new Org(opts.objects ?? defaultObjects());
    this.bulk = new BulkIngest(this.org, this.faults, { processingDelayMs: opts.bulkProcessingMs ?? 20, failNextJobAfterRows: null });
    this.auth = { clientId: 'segsync-client', clientSecret: 'segsync-secret', username: 'integration@example.com', audiences: [], ...opts.auth };
    this.dailyLimit = opts.dailyLimit ?? 100_000;
    this.maxApiVersion = opts.maxApiVersion ?? 62;
    this.latencyMs = opts.latencyMs ?? 0;
    this.cursors = new QueryCursors(this.org);
  }

  async start(): Promise<this> {
    // A request whose body stops arriving is answered 408 after 10 s, as Salesforce times it out (sooner than
    // node's default of 5 minutes, so a test that hits it fails quickly).
    this.server = createServer({ requestTimeout: 10_000, connectionsCheckingInterval: 500 }, (req, res) => { void this.handle(req, res); });
    this.server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.auth.audiences.push(this.url, 'https://login.salesforce.com', 'https://test.salesforce.com');
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  // ---- inspection and control -------------------------------------------------------------------------

  /** A valid session, as if an admin copied one (for SALESFORCE_ACCESS_TOKEN auth). */
  issueToken(): string {
    const r = tokenEndpoint(this.auth, new URLSearchParams({ grant_type: 'client_credentials', client_id: this.auth.clientId, client_secret: this.auth.clientSecret }), this.url);
    this.tokens.add(r.token!);
    return r.token!;
  }

  records(type: string): SfRecord[] {
    return [...this.org.table(type).values()].map((r) => ({ ...r }));
  }

  findBy(type: string, field: string, value: string): SfRecord | undefined {
    const hit = this.org.findByField(type, field, value)[0];
    return hit ? { ...hit } : undefined;
  }

  /** An admin edits a record in the UI (drift): no API budget, no checks. */
  editRecord(type: string, id: string, values: SfRecord): void {
    this.org.edit(type, id, values);
  }

  deleteRecord(_type: string, id: string): void {
    this.org.remove(id);
  }

  count(endpoint: string): number {
    return this.counts.get(endpoint) ?? 0;
  }

  apiCalls(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  resetCounters(): void {
    this.counts.clear();
    this.log.length = 0;
  }

  resetDailyUsage(used = 0): void {
    this.used = used;
  }

  expireSessions(): void {
    this.tokens.clear();
  }

  /** Every session dies after `n` more API requests (a session timing out mid-run). */
  expireSessionsAfter(n: number): void {
    this.expireAfter = n;
  }

  /**
   * Every session dies just before the next request to `endpoint` (e.g. 'bulk.upload'): that request is
   * answered 401 INVALID_SESSION_ID, as when a session times out between two calls.
   */
  expireSessionsAt(endpoint: string): void {
    this.expireAt = endpoint;
  }

  /** The next `times` requests (to `endpoint` if given) answer `status` (500, 503) instead. */
  failNext(status: number, times = 1, endpoint?: string): void {
    this.failures.push({ status, left: times, ...(endpoint ? { endpoint } : {}) });
  }

  /**
   * The next `times` requests (to `endpoint` if given) are carried out, then the connection is reset before
   * the answer leaves: the client cannot know whether the org applied them (it did).
   */
  resetNext(times = 1, endpoint?: string): void {
    this.resets.push({ left: times, ...(endpoint ? { endpoint } : {}) });
  }

  /**
   * Runs `fn` just before the next request to `endpoint` is handled (in-process tests: another integration
   * spends the day's budget at that moment, an admin edits a record).
   */
  beforeNext(endpoint: string, fn: () => void): void {
    this.hooks.push({ endpoint, fn });
  }

  /** These external ids (or Ids) fail their next `times` writes with UNABLE_TO_LOCK_ROW. */
  lockRows(keys: string[], times = 1): void {
    for (const k of keys) this.faults.locked.set(k, times);
  }

  // ---- HTTP -----------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    try {
      if (url.pathname === '/services/oauth2/token' && method === 'POST') {
        const r = tokenEndpoint(this.auth, new URLSearchParams(raw), this.url);
        if (r.token) { this.tokens.add(r.token); this.tokenGrants += 1; }
        this.send(res, r.status, r.body);
        return;
      }
      if (url.pathname.startsWith('/__emulator/')) { this.control(method, url, raw, res); return; }
      const m = /^\/services\/data\/v(\d+\.\d)\/(.*)$/.exec(url.pathname);
      if (!m) { this.send(res, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]); return; }
      const version = m[1]!;
      const rest = m[2]!.replace(/\/$/, '');
      const endpoint = endpointOf(method, rest);
      if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
      const reply = this.api(method, version, rest, url, raw, String(req.headers.authorization ?? ''), String(req.headers['content-type'] ?? ''), endpoint);
      const records = method === 'PATCH' && endpoint.startsWith('collections') ? (tryJson(raw)?.records?.length ?? 0) : 0;
      const reset = this.resets.find((r) => r.left > 0 && (!r.endpoint || r.endpoint === endpoint));
      this.log.push({ method, path: url.pathname, endpoint, status: reset ? 0 : reply.status, records });
      if (this.log.length > LOG_CAP) this.log.splice(0, this.log.length - LOG_CAP);
      if (reset) {
        reset.left -= 1;
        this.resets = this.resets.filter((r) => r.left > 0);
        res.socket?.resetAndDestroy();
        return;
      }
      res.setHeader('Sforce-Limit-Info', `api-usage=${this.used}/${this.dailyLimit}`);
      if ('csv' in reply) {
        res.writeHead(reply.status, { 'content-type': 'text/csv' }).end(reply.body as string);
      } else {
        this.send(res, reply.status, reply.body);
      }
    } catch (err) {
      this.send(res, 500, [{ errorCode: 'UNKNOWN_EXCEPTION', message: `emulator: ${(err as Error).message}` }]);
    }
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    if (status === 201 && body === '') { res.writeHead(201).end(); return; }
    if (status === 204) { res.writeHead(204).end(); return; }
    res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8' }).end(JSON.stringify(body));
  }

  private api(method: string, version: string, rest: string, url: URL, raw: string, authz: string, contentType: string, endpoint: string): Reply & { csv?: true } {
    if (Number(version) > this.maxApiVersion) return apiError(404, 'NOT_FOUND', 'The requested resource does not exist');
    const hook = this.hooks.findIndex((h) => h.endpoint === endpoint);
    if (hook >= 0) this.hooks.splice(hook, 1)[0]!.fn();
    if (this.expireAt === endpoint) { this.expireAt = null; this.tokens.clear(); }
    const token = authz.replace(/^Bearer\s+/i, '');
    if (!this.tokens.has(token)) return apiError(401, 'INVALID_SESSION_ID', 'Session expired or invalid');
    if (this.used >= this.dailyLimit) return apiError(403, 'REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.');
    this.used += 1;
    this.counts.set(endpoint, (this.counts.get(endpoint) ?? 0) + 1);
    if (this.expireAfter !== null) {
      this.expireAfter -= 1;
      if (this.expireAfter <= 0) { this.expireAfter = null; this.tokens.clear(); }
    }
    const fault = this.failures.find((f) => f.left > 0 && (!f.endpoint || f.endpoint === endpoint));
    if (fault) {
      fault.left -= 1;
      this.failures = this.failures.filter((f) => f.left > 0);
      return apiError(fault.status, fault.status === 503 ? 'SERVER_UNAVAILABLE' : 'UNKNOWN_EXCEPTION', 'An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)');
    }
    try {
      return this.route(method, version, rest, url, raw, contentType);
    } catch (err) {
      if (err instanceof DeserializeError || err instanceof SoqlError) return apiError(err instanceof DeserializeError && err.errorCode === 'NOT_FOUND' ? 404 : 400, err.errorCode, err.message);
      throw err;
    }
  }

  private route(method: string, version: string, rest: string, url: URL, raw: string, contentType: string): Reply & { csv?: true } {
    let m: RegExpExecArray | null;
    if (method === 'GET' && rest === 'limits') {
      return { status: 200, body: { DailyApiRequests: { Max: this.dailyLimit, Remaining: Math.max(0, this.dailyLimit - this.used) } } };
    }
    if (method === 'GET' && (m = /^sobjects\/([^/]+)\/describe$/.exec(rest))) {
      const o = this.org.object(m[1]!);
      return o ? { status: 200, body: describeObject(o) } : apiError(404, 'NOT_FOUND', `The requested resource does not exist`);
    }
    if (method === 'PATCH' && (m = /^composite\/sobjects\/([^/]+)\/([^/]+)$/.exec(rest))) return upsertCollection(this.org, this.faults, m[1]!, m[2]!, raw);
    if (method === 'PATCH' && rest === 'composite/sobjects') return updateCollection(this.org, this.faults, raw);
    if (method === 'DELETE' && rest === 'composite/sobjects') {
      return deleteCollection(this.org, (url.searchParams.get('ids') ?? '').split(',').filter(Boolean), url.searchParams.get('allOrNone') === 'true');
    }
    if (method === 'PATCH' && (m = /^sobjects\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(rest))) return this.upsertOne(m[1]!, m[2]!, decodeURIComponent(m[3]!), raw);
    if (method === 'GET' && rest === 'query') return this.cursors.query(version, url.searchParams.get('q') ?? '');
    if (method === 'GET' && (m = /^query\/([^/]+)$/.exec(rest))) return this.cursors.page(version, m[1]!);
    if (method === 'POST' && rest === 'jobs/ingest') return this.bulk.create(raw, version);
    if (method === 'PUT' && (m = /^jobs\/ingest\/([^/]+)\/batches$/.exec(rest))) return this.bulk.upload(m[1]!, contentType, raw);
    if (method === 'PATCH' && (m = /^jobs\/ingest\/([^/]+)$/.exec(rest))) return this.bulk.patch(m[1]!, raw);
    if (method === 'GET' && (m = /^jobs\/ingest\/([^/]+)$/.exec(rest))) return this.bulk.status(m[1]!);
    if (method === 'GET' && (m = /^jobs\/ingest\/([^/]+)\/(successfulResults|failedResults|unprocessedrecords)$/.exec(rest))) {
      return this.bulk.results(m[1]!, m[2] as 'successfulResults');
    }
    return apiError(404, 'NOT_FOUND', 'The requested resource does not exist');
  }

  /** PATCH /sobjects/{type}/{extField}/{value}: one record per call (201 created, 200 updated). */
  private upsertOne(type: string, extField: string, value: string, raw: string): Reply {
    const body = tryJson(raw);
    if (!body) return apiError(400, 'JSON_PARSER_ERROR', 'Unexpected character in request body');
    const r = upsertCollection(this.org, this.faults, type, extField, JSON.stringify({ allOrNone: true, records: [{ ...body, attributes: { type }, [extField]: value }] }));
    if (r.status !== 200) return r;
    const [one] = r.body as Array<{ id: string; success: boolean; created?: boolean; errors: Array<{ statusCode: string; message: string; fields: string[] }> }>;
    if (!one!.success) return { status: 400, body: one!.errors.map((e) => ({ message: e.message, errorCode: e.statusCode, fields: e.fields })) };
    return { status: one!.created ? 201 : 200, body: { id: one!.id, success: true, errors: [], created: one!.created } };
  }

  private control(method: string, url: URL, raw: string, res: ServerResponse): void {
    const body = (tryJson(raw) ?? {}) as Record<string, unknown>;
    const p = url.pathname.slice('/__emulator/'.length);
    let m: RegExpExecArray | null;
    if (method === 'GET' && (m = /^records\/([^/]+)$/.exec(p))) { this.send(res, 200, this.records(m[1]!)); return; }
    if (method === 'GET' && p === 'requests') {
      this.send(res, 200, { used: this.used, limit: this.dailyLimit, counts: Object.fromEntries(this.counts), records: Object.fromEntries([...this.org.records].map(([k, v]) => [k, v.size])), log: this.log.slice(-1000) });
      return;
    }
    if (method === 'PATCH' && (m = /^records\/([^/]+)\/([^/]+)$/.exec(p))) { this.editRecord(m[1]!, m[2]!, body as SfRecord); this.send(res, 200, { ok: true }); return; }
    if (method === 'DELETE' && (m = /^records\/([^/]+)\/([^/]+)$/.exec(p))) { this.deleteRecord(m[1]!, m[2]!); this.send(res, 200, { ok: true }); return; }
    if (method === 'POST' && p === 'reset') {
      this.org.clear();
      this.resetCounters();
      this.resetDailyUsage();
      this.send(res, 200, { ok: true });
      return;
    }
    if (method === 'POST' && p === 'reset-usage') { this.resetDailyUsage(Number(body.used ?? 0)); this.send(res, 200, { ok: true }); return; }
    if (method === 'POST' && p === 'expire-sessions') {
      if (typeof body.at === 'string') this.expireSessionsAt(body.at); else this.expireSessions();
      this.send(res, 200, { ok: true });
      return;
    }
    if (method === 'POST' && p === 'fail-next') { this.failNext(Number(body.status ?? 500), Number(body.times ?? 1), body.endpoint as string | undefined); this.send(res, 200, { ok: true }); return; }
    if (method === 'POST' && p === 'reset-next') { this.resetNext(Number(body.times ?? 1), body.endpoint as string | undefined); this.send(res, 200, { ok: true }); return; }
    if (method === 'POST' && p === 'lock-rows') { this.lockRows((body.keys as string[]) ?? [], Number(body.times ?? 1)); this.send(res, 200, { ok: true }); return; }
    this.send(res, 404, { error: 'unknown control endpoint' });
  }
}

function tryJson(raw: string): { records?: unknown[] } & Record<string, unknown> | null {
  try {
    const v = JSON.parse(raw) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export async function startSalesforceEmulator(opts: EmulatorOptions = {}): Promise<SalesforceEmulator> {
  return new SalesforceEmulator(opts).start();
}
