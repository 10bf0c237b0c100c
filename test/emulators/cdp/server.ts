import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaultPlan, type Fault } from './faults.ts';

/**
 * A local emulator of the Segment HTTP Tracking API and RudderStack's compatible data plane, both
 * `POST /v1/batch` with Basic auth (`writeKey:`). It enforces the documented limits and answers in each
 * vendor's shapes: Segment JSON, RudderStack `text/plain`. Events are deduplicated on messageId as the real
 * services do; the inspection API shows both what was received (duplicates included) and what was kept.
 */

export type CdpFlavour = 'segment' | 'rudderstack';

const FAULT_MESSAGES: Record<CdpFlavour, Record<number, string>> = {
  segment: { 400: 'bad request', 413: 'request entity too large', 429: 'too many requests', 500: 'internal server error', 502: 'bad gateway', 503: 'service unavailable' },
  rudderstack: { 400: 'Invalid request body', 413: 'Request size exceeds max limit', 429: 'Too many requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' },
};

interface FlavourRules {
  maxEventBytes: number;
  maxRequestBytes: number;
  /** Segment accepts a bigger batch with 200 and drops it; null = no such rule. */
  maxEventsKept: number | null;
  /** Status for a request over maxRequestBytes. */
  oversizeRequestStatus: number;
}

const RULES: Record<CdpFlavour, FlavourRules> = {
  segment: { maxEventBytes: 32 * 1024, maxRequestBytes: 500 * 1024, maxEventsKept: 2500, oversizeRequestStatus: 400 },
  rudderstack: { maxEventBytes: 32 * 1024, maxRequestBytes: 4000 * 1024, maxEventsKept: null, oversizeRequestStatus: 413 },
};

export interface CdpEvent {
  type: string;
  userId?: string;
  anonymousId?: string;
  messageId?: string;
  event?: string;
  traits?: Record<string, unknown>;
  properties?: Record<string, unknown>;
  timestamp?: string;
  context?: Record<string, unknown>;
  [k: string]: unknown;
}

export interface RequestLog {
  requestId: string;
  status: number | 'reset';
  bytes: number;
  events: number;
  /** Events kept (new messageIds) by this request. */
  kept: number;
  fault?: string;
}

export interface CdpEmulator {
  url: string;
  flavour: CdpFlavour;
  writeKey: string;
  faults: FaultPlan;
  /** Every event received in an accepted request, duplicates included, in arrival order. */
  received: CdpEvent[];
  /** Events kept after messageId deduplication. */
  kept: CdpEvent[];
  requests: RequestLog[];
  /** Batches answered 200 but dropped (Segment, over 2,500 events). */
  droppedBatches: number;
  /** Current traits per userId, built from kept identify calls in order. */
  profile(userId: string): Record<string, unknown> | undefined;
  identifies(userId: string): CdpEvent[];
  tracks(userId: string, event?: string): CdpEvent[];
  duplicatesReceived(): number;
  /** The token the regulation API (Segment Public API /regulations, RudderStack /v2/regulations) accepts. */
  regulationToken: string;
  /** Regulations filed, in order: a suppressed userId's profile is deleted and its later events dropped. */
  regulations: Array<{ id: string; type: string; userIds: string[] }>;
  reset(): void;
  close(): Promise<void>;
}

function isEmptyBatch(body: Buffer): boolean {
  return body.length < 200 && /^\{"batch":\[\]/.test(body.toString('utf8'));
}

/** For the request log only: how many events a body holds (0 when it does not parse). */
function countEvents(body: Buffer): number {
  try {
    const b = (JSON.parse(body.toString('utf8')) as { batch?: unknown }).batch;
    return Array.isArray(b) ? b.length : 0;
  } catch {
    return 0;
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function startCdpEmulator(opts: { flavour: CdpFlavour; writeKey?: string }): Promise<CdpEmulator> {
  const flavour = opts.flavour;
  const rules = RULES[flavour];
  const writeKey = opts.writeKey ?? `${flavour}-test-key`;
  const seen = new Set<string>();
  const profiles = new Map<string, Record<string, unknown>>();

  const emu: CdpEmulator = {
    url: '',
    flavour,
    writeKey,
    faults: new FaultPlan(),
    received: [],
    kept: [],
    requests: [],
    droppedBatches: 0,
    profile: (u) => profiles.get(u),
    identifies: (u) => emu.kept.filter((e) => e.type === 'identify' && e.userId === u),
    tracks: (u, name) => emu.kept.filter((e) => e.type === 'track' && e.userId === u && (name === undefined || e.event === name)),
    duplicatesReceived: () => emu.received.length - emu.kept.length,
    regulationToken: `${flavour}-regulation-token`,
    regulations: [],
    reset() {
      emu.received.length = 0;
      emu.kept.length = 0;
      emu.requests.length = 0;
      emu.droppedBatches = 0;
      emu.faults.clear();
      seen.clear();
      profiles.clear();
    },
    close: async () => {},
  };

  function answer(res: ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
    if (flavour === 'segment') {
      const body = status === 200 ? { success: true } : { success: false, message, code: status === 429 ? 'rate_limited' : 'invalid_request' };
      res.writeHead(status, { 'content-type': 'application/json', ...extra });
      res.end(JSON.stringify(body));
    } else {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...extra });
      res.end(status === 200 ? 'OK' : message);
    }
  }

  function ingest(events: CdpEvent[]): number {
    let kept = 0;
    for (const e of events) {
      emu.received.push(e);
      if (e.userId !== undefined && emu.regulations.some((r) => /suppress/i.test(r.type) && r.userIds.includes(e.userId!))) continue;
      if (e.messageId !== undefined && seen.has(e.messageId)) continue;
      if (e.messageId !== undefined) seen.add(e.messageId);
      emu.kept.push(e);
      kept++;
      if (e.type === 'identify' && e.userId !== undefined) {
        profiles.set(e.userId, { ...profiles.get(e.userId), ...e.traits });
      }
    }
    return kept;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    res.setHeader('x-request-id', requestId);
    const body = await readBody(req);
    const log: RequestLog = { requestId, status: 200, bytes: body.length, events: 0, kept: 0 };
    emu.requests.push(log);
    const reply = (status: number, message: string, extra?: Record<string, string>) => {
      log.status = status;
      answer(res, status, message, extra);
    };

    if (req.method === 'POST' && req.url === (flavour === 'segment' ? '/regulations' : '/v2/regulations')) return regulate(body);
    if (req.method !== 'POST' || req.url !== '/v1/batch') return reply(404, flavour === 'segment' ? 'not found' : '404 page not found');
    const auth = req.headers.authorization ?? '';
    const m = /^Basic (.+)$/.exec(auth);
    const key = m ? Buffer.from(m[1] ?? '', 'base64').toString('utf8').replace(/:$/, '') : null;
    if (key === null) return reply(401, flavour === 'segment' ? 'missing write key' : 'Failed to read writeKey from header');
    if (key !== writeKey) return reply(401, flavour === 'segment' ? 'invalid write key' : 'Invalid write key');

    // Faults hit data requests only: an empty batch is a connectivity probe (session.check), and a fault
    // there would test the engine's start-up, not delivery.
    log.events = countEvents(body);
    const taken = isEmptyBatch(body) ? null : emu.faults.take();
    const fault = taken?.kind === 'pass' ? null : taken;
    const injectBefore = fault?.phase === 'before';
    if (fault && injectBefore) return inject(fault);

    if (body.length > rules.maxRequestBytes) return reply(rules.oversizeRequestStatus, flavour === 'segment' ? `request is ${body.length} bytes; the limit is 500 KB` : 'Request size exceeds max limit');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return reply(400, flavour === 'segment' ? 'invalid JSON' : 'Invalid request body');
    }
    const batch = (parsed as { batch?: unknown })?.batch;
    if (!Array.isArray(batch)) return reply(400, flavour === 'segment' ? 'batch must be an array' : 'Invalid request body');
    log.events = batch.length;
    for (const e of batch as CdpEvent[]) {
      if (Buffer.byteLength(JSON.stringify(e)) > rules.maxEventBytes) return reply(400, flavour === 'segment' ? 'event exceeds 32 KB' : 'Event size exceeds max limit');
      if (typeof e !== 'object' || e === null || typeof e.type !== 'string') return reply(400, flavour === 'segment' ? 'event type is required' : 'Invalid request body');
      if (!e.userId && !e.anonymousId) return reply(400, flavour === 'segment' ? 'userId or anonymousId is required' : 'non-identifiable request');
    }
    if (rules.maxEventsKept !== null && batch.length > rules.maxEventsKept) {
      // Documented Segment behaviour: the request "succeeds" and the events are gone.
      emu.droppedBatches++;
      return reply(200, 'OK');
    }
    log.kept = ingest(batch as CdpEvent[]);
    if (fault) return inject(fault);
    return reply(200, 'OK');

    /**
     * The vendors' regulation APIs as documented: Segment's Public API `POST /regulations` {regulationType, subjectType
     * USER_ID|OBJECT_ID, subjectIds (1..5,000)} answers {data: {regulateId}}; RudderStack's `POST /v2/regulations`
     * {regulationType suppress|suppress_with_delete, users: [{userId}]} answers the regulations made. Bearer auth.
     */
    function regulate(raw: Buffer): void {
      const json = (status: number, value: unknown) => {
        log.status = status;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      };
      if (req.headers.authorization !== `Bearer ${emu.regulationToken}`) return json(401, flavour === 'segment' ? { errors: [{ type: 'unauthorized', message: 'Unauthorized' }] } : { message: 'Unauthorized' });
      let b: Record<string, unknown>;
      try {
        b = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        return json(400, { errors: [{ type: 'validation', message: 'invalid JSON' }] });
      }
      const id = randomUUID();
      if (flavour === 'segment') {
        const types = ['SUPPRESS_WITH_DELETE', 'SUPPRESS_ONLY', 'UNSUPPRESS', 'DELETE_INTERNAL', 'DELETE_ONLY', 'SUPPRESS_WITH_DELETE_INTERNAL', 'DELETE_ARCHIVE_ONLY'];
        const ids = b.subjectIds;
        if (!types.includes(String(b.regulationType))) return json(400, { errors: [{ type: 'validation', message: `regulationType must be one of ${types.join(', ')}` }] });
        if (b.subjectType !== 'USER_ID' && b.subjectType !== 'OBJECT_ID') return json(400, { errors: [{ type: 'validation', message: 'subjectType must be USER_ID or OBJECT_ID' }] });
        if (!Array.isArray(ids) || ids.length < 1 || ids.length > 5000 || !ids.every((x) => typeof x === 'string')) return json(400, { errors: [{ type: 'validation', message: 'subjectIds must hold 1 to 5000 strings' }] });
        apply(id, String(b.regulationType), ids as string[]);
        return json(200, { data: { regulateId: id } });
      }
      const users = b.users;
      if (b.regulationType !== 'suppress' && b.regulationType !== 'suppress_with_delete') return json(400, { message: 'regulationType must be suppress or suppress_with_delete' });
      if (!Array.isArray(users) || !users.length || !users.every((u) => u && typeof (u as { userId?: unknown }).userId === 'string')) return json(400, { message: 'users must be a list of {userId}' });
      const userIds = (users as Array<{ userId: string }>).map((u) => u.userId);
      apply(id, String(b.regulationType), userIds);
      return json(201, [{ id, canceled: false, regulationType: b.regulationType, attributes: { userId: userIds } }]);
    }

    function apply(id: string, type: string, userIds: string[]): void {
      emu.regulations.push({ id, type, userIds });
      if (/delete/i.test(type)) for (const u of userIds) profiles.delete(u);
    }

    function inject(f: Fault): void {
      log.fault = `${f.kind}${f.status ? ` ${f.status}` : ''} ${f.phase}`;
      if (f.kind === 'reset') {
        log.status = 'reset';
        req.socket.destroy();
        return;
      }
      const s = f.status ?? 503;
      const message = f.body ?? FAULT_MESSAGES[flavour][s] ?? `error ${s}`;
      reply(s, message, f.retryAfterSec === undefined ? {} : { 'retry-after': String(f.retryAfterSec) });
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) answer(res, 500, `emulator error: ${String(err)}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  emu.url = `http://127.0.0.1:${port}`;
  emu.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return emu;
}

// `node test/emulators/cdp/server.ts segment|rudderstack [writeKey]`: a local stand-in for trying segsync
// without an account (docs/destinations/cdp.md). Prints its URL; on Ctrl-C, what it kept.
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  const flavour = (process.argv[2] ?? 'segment') as CdpFlavour;
  if (!(flavour in RULES)) {
    console.error('usage: node test/emulators/cdp/server.ts segment|rudderstack [writeKey]');
    process.exit(2);
  }
  const emu = await startCdpEmulator({ flavour, ...(process.argv[3] ? { writeKey: process.argv[3] } : {}) });
  console.log(`${flavour} emulator on ${emu.url} (write key: ${emu.writeKey}); Ctrl-C to stop`);
  process.on('SIGINT', () => {
    console.log(JSON.stringify({ requests: emu.requests.length, received: emu.received.length, kept: emu.kept.length }, null, 2));
    for (const e of emu.kept.slice(0, 5)) console.log(JSON.stringify(e));
    void emu.close().then(() => process.exit(0));
  });
}
