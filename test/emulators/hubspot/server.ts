import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaultInjector, NO_FAULTS, RateLimiter, type FaultSettings, type LimitSettings, type RateVerdict, type ScriptedFault } from './limits.ts';
import { controlRoute } from './control.ts';
import { Crm, errorBody, type Answer } from './routes.ts';
import { canonicalType, newPropertyDef, type CrmRecord } from './store.ts';

/**
 * A HubSpot CRM v3 emulator over real HTTP on 127.0.0.1, for tests that drive @hubspot/api-client. It checks
 * the bearer token, enforces the ten-secondly and daily limits with HubSpot's headers and 429 bodies, injects
 * seeded faults, and exposes an in-process control API (records, request log, drift, "next day").
 */

export interface EmulatorOptions {
  token?: string | undefined;
  /** Default 0: any free port. */
  port?: number;
  limits?: Partial<LimitSettings>;
  faults?: Partial<FaultSettings>;
  /** Shuffle batch results (HubSpot does not promise request order). Default true. */
  shuffleResults?: boolean;
}

export interface LoggedRequest { method: string; path: string; status: number; inputs: number; at: number; fault: string }

export interface HubSpotEmulator {
  url: string;
  token: string;
  crm: Crm;
  limiter: RateLimiter;
  faults: FaultInjector;
  requests: LoggedRequest[];
  /** Called as each request is logged (before its answer is sent): tests use it to act at a precise moment. */
  onRequest: ((r: LoggedRequest) => void) | undefined;
  /** Requests per "METHOD /path" (object type kept in the path). */
  counts(): Record<string, number>;
  count(method: string, pathPrefix: string, status?: number): number;
  /** Live (not archived) records of a type. */
  records(objectType: string): CrmRecord[];
  find(objectType: string, property: string, value: string): CrmRecord | undefined;
  /** Somebody edits a record in the CRM (drift). */
  edit(objectType: string, id: string, property: string, value: string): void;
  /** Somebody deletes a record in the CRM. */
  purge(objectType: string, id: string): void;
  defineProperty(objectType: string, def: Record<string, unknown>): void;
  defineCustomObject(objectTypeId: string, properties: Array<Record<string, unknown>>): void;
  /** A ticket created in HubSpot (at `at`, default now: createdate and hs_lastmodifieddate). */
  createTicket(properties: Record<string, string>, at?: Date): string;
  associateContactTicket(contactId: string, ticketId: string): void;
  /** Another app of the account uses n calls of the current ten-second window. */
  consume(n: number): void;
  nextDay(): void;
  setLimits(limits: Partial<LimitSettings>): void;
  setFaults(faults: Partial<FaultSettings>): void;
  /** The next requests get these faults, one each, in order (then the random ones resume). */
  scriptFaults(...faults: ScriptedFault[]): void;
  /**
   * No request being handled and no client connection open: once a killed client's connections are closed,
   * every request it sent has been applied or dropped, and nothing of it can change the store any more.
   */
  idle(): Promise<boolean>;
  close(): Promise<void>;
}

function send(res: ServerResponse, a: Answer, headers: Record<string, string>): void {
  const body = a.body === undefined ? '' : JSON.stringify(a.body);
  res.writeHead(a.status, { ...headers, 'x-hubspot-correlation-id': crypto.randomUUID(), ...(body ? { 'content-type': 'application/json;charset=utf-8' } : {}) });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function route(crm: Crm, method: string, path: string, query: URLSearchParams, body: unknown): Answer {
  let m: RegExpMatchArray | null;
  if (method === 'POST' && path === '/crm/v3/objects/contacts/gdpr-delete') return crm.gdprDelete(body);
  if (method === 'POST' && (m = path.match(/^\/crm\/v3\/objects\/([^/]+)\/batch\/(upsert|read|update|archive)$/))) {
    const [, type, op] = m as unknown as [string, string, string];
    if (op === 'upsert') return crm.upsert(type, body);
    if (op === 'read') return crm.read(type, body, query.get('archived') === 'true');
    if (op === 'update') return crm.update(type, body);
    return crm.archive(type, body);
  }
  if ((m = path.match(/^\/crm\/v3\/properties\/([^/]+)$/))) {
    if (method === 'GET') return crm.getProperties(m[1]!);
    if (method === 'POST') return crm.createProperty(m[1]!, body);
  }
  if (method === 'PATCH' && (m = path.match(/^\/crm\/v3\/objects\/([^/]+)\/([^/]+)$/))) return crm.updateOne(m[1]!, decodeURIComponent(m[2]!), query.get('idProperty') ?? 'hs_object_id', body);
  if (method === 'POST' && (m = path.match(/^\/crm\/v3\/objects\/([^/]+)\/search$/))) return crm.search(m[1]!, body);
  if (method === 'POST' && (m = path.match(/^\/crm\/v4\/associations\/([^/]+)\/([^/]+)\/batch\/read$/))) return crm.readAssociations(m[1]!, m[2]!, body);
  return errorBody(404, 'OBJECT_NOT_FOUND', `No route for ${method} ${path}`);
}

export async function startHubSpotEmulator(opts: EmulatorOptions = {}): Promise<HubSpotEmulator> {
  const token = opts.token ?? 'pat-na1-emulator-token';
  const crm = new Crm();
  const limiter = new RateLimiter({ tenSecondly: null, daily: null, timeScale: 1, ...opts.limits });
  const faults = new FaultInjector({ ...NO_FAULTS, ...opts.faults });
  const requests: LoggedRequest[] = [];
  let shuffleSeed = 7;
  if (opts.shuffleResults !== false) {
    crm.shuffle = (n) => {
      const a = [...Array(n).keys()];
      for (let i = n - 1; i > 0; i--) {
        shuffleSeed = (shuffleSeed * 1103515245 + 12345) % 2147483648;
        const j = shuffleSeed % (i + 1);
        [a[i], a[j]] = [a[j]!, a[i]!];
      }
      return a;
    };
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    const raw = await readBody(req);
    let body: unknown;
    const log = (status: number, fault = 'none'): void => {
      const inputs = Array.isArray((body as { inputs?: unknown } | undefined)?.inputs) ? (body as { inputs: unknown[] }).inputs.length : 0;
      const entry = { method, path: url.pathname, status, inputs, at: Date.now(), fault };
      requests.push(entry);
      emulator.onRequest?.(entry);
    };
    if (url.pathname.startsWith('/__emulator/')) {
      let parsed: unknown;
      try {
        parsed = raw ? JSON.parse(raw) : undefined;
      } catch {
        return send(res, { status: 400, body: { message: 'invalid JSON' } }, {});
      }
      return send(res, controlRoute(emulator, method, url.pathname, parsed), {});
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      log(401);
      return send(res, errorBody(401, 'INVALID_AUTHENTICATION', 'Authentication credentials not found. This API supports OAuth 2.0 authentication.'), {});
    }
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      log(400);
      return send(res, errorBody(400, 'VALIDATION_ERROR', 'Invalid input JSON on line 1'), {});
    }
    const fault = faults.draw();
    if (fault === 'timeout') {
      log(0, fault);
      setTimeout(() => req.socket.destroy(), faults.settings.timeoutMs).unref();
      return;
    }
    if (fault === 'reset_before') {
      log(0, fault);
      req.socket.destroy();
      return;
    }
    const isSearch = method === 'POST' && /^\/crm\/v3\/objects\/[^/]+\/search$/.test(url.pathname);
    // A rate-limit fault on a write fills the ten-second window as another app of the account would, so the
    // 429 comes with honest headers; on a search it is the search API's own SECONDLY limit.
    const admitted = isSearch ? limiter.admitSearch(Date.now()) : fault === 'rate_limited' ? limiter.crowdOut(Date.now()) : limiter.admit(Date.now());
    const verdict: RateVerdict = fault === 'rate_limited' && isSearch ? { ok: false, policy: 'SECONDLY', headers: admitted.headers }
      : fault === 'daily_limited' ? { ok: false, policy: 'DAILY', headers: admitted.headers } : admitted;
    if (!verdict.ok) {
      log(429, fault);
      const message = { DAILY: 'You have reached your daily limit.', TEN_SECONDLY_ROLLING: 'You have reached your ten_secondly_rolling limit.', SECONDLY: 'You have reached your secondly limit.' }[verdict.policy];
      return send(res, { status: 429, body: { status: 'error', message, errorType: 'RATE_LIMIT', correlationId: crypto.randomUUID(), policyName: verdict.policy } }, verdict.headers);
    }
    if (fault === 'server_error') {
      log(502, fault);
      return send(res, errorBody(502, 'BAD_GATEWAY', 'The server encountered a temporary error.'), verdict.headers);
    }
    if (fault === 'unavailable') {
      log(503, fault);
      return send(res, errorBody(503, 'SERVICE_UNAVAILABLE', 'The service is temporarily unavailable.'), verdict.headers);
    }
    if (fault === 'slow') await new Promise((r) => setTimeout(r, faults.settings.slowMs));
    const answer = route(crm, method, url.pathname, url.searchParams, body);
    if (fault === 'reset_after') {
      log(0, fault);
      req.socket.destroy();
      return;
    }
    log(answer.status, fault);
    send(res, answer, verdict.headers);
  };

  let handling = 0;
  const server: Server = createServer((req, res) => {
    handling += 1;
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, errorBody(500, 'INTERNAL_ERROR', String(err)), {});
    }).finally(() => { handling -= 1; });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const storeOf = (t: string) => {
    const s = crm.store(t);
    if (!s) throw new Error(`emulator: no object type ${t}`);
    return s;
  };

  const emulator: HubSpotEmulator = {
    url: `http://127.0.0.1:${port}`,
    token, crm, limiter, faults, requests, onRequest: undefined,
    counts() {
      const out: Record<string, number> = {};
      for (const r of requests) out[`${r.method} ${r.path}`] = (out[`${r.method} ${r.path}`] ?? 0) + 1;
      return out;
    },
    count(method, prefix, status) {
      return requests.filter((r) => r.method === method && r.path.startsWith(prefix) && (status === undefined || r.status === status)).length;
    },
    records: (t) => [...storeOf(t).records.values()].filter((r) => !r.archived),
    find: (t, p, v) => storeOf(t).findBy(p, v),
    edit(t, id, p, v) {
      const s = storeOf(t);
      const r = s.records.get(id);
      if (!r) throw new Error(`emulator: no ${t} ${id}`);
      s.apply(r, { [p]: v }, new Date().toISOString());
    },
    purge: (t, id) => storeOf(t).purge(id),
    defineProperty(t, d) {
      const p = newPropertyDef({ label: d.name, groupName: 'emulator', fieldType: d.type === 'enumeration' ? 'select' : 'text', ...d }, new Date().toISOString());
      if (typeof p === 'string') throw new Error(`emulator: ${p}`);
      Object.assign(p, { readOnlyValue: d.readOnlyValue === true, calculated: d.calculated === true });
      storeOf(t).addProperty(p);
    },
    defineCustomObject(id, props) {
      crm.defineType(canonicalType(id));
      for (const d of props) emulator.defineProperty(id, d);
    },
    createTicket(properties, at = new Date()) {
      const s = storeOf('tickets');
      const { values, problems } = s.check(properties);
      if (problems.length > 0) throw new Error(`emulator: ${problems.map((p) => p.message).join('; ')}`);
      return s.create(values, at.toISOString()).id;
    },
    associateContactTicket(contactId, ticketId) {
      let set = crm.contactTickets.get(contactId);
      if (!set) crm.contactTickets.set(contactId, (set = new Set()));
      set.add(ticketId);
    },
    consume: (n) => limiter.consume(n, Date.now()),
    nextDay: () => limiter.nextDay(),
    setLimits(l) {
      limiter.settings = { ...limiter.settings, ...l };
    },
    setFaults: (f) => faults.set(f),
    scriptFaults: (...f) => void faults.script.push(...f),
    idle: () => new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(handling === 0 && n === 0)))),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return emulator;
}
