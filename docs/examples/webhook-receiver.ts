/**
 * A sample receiver for segsync's webhook destination: verifies signatures, applies each change once (by its
 * `id`), applies changes to an in-memory store, answers per-record results, and serves read-back. Run it:
 *
 *   WEBHOOK_SECRET=$(openssl rand -hex 32) PORT=8787 node docs/examples/webhook-receiver.ts
 *
 * and point a webhook connection at http://127.0.0.1:8787/segsync (read_back_url: http://127.0.0.1:8787/read).
 * Replace the Map with your own system; keep the order: verify the RAW body first, then parse.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TOLERANCE_SEC, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyWebhookSignature } from '../../src/webhook/verify.ts';

type Values = Record<string, string | number | boolean | null>;

interface IncomingChange {
  /** The change's idempotency id: the same change sent again has the same id. */
  id: string;
  key: string;
  op: 'create' | 'update' | 'remove';
  before: Values | null;
  after: Values | null;
  payload_hash: string;
}

export interface ReceiverOptions {
  secret: string;
  /** Replay window in seconds: older or future-dated timestamps are refused (default 300). */
  toleranceSec?: number;
  /**
   * Your own per-record check: return an error message to refuse that record for good, or
   * `{error, retryable: true}` when sending it again later may succeed (a lock, a dependency down).
   */
  validate?: (change: IncomingChange) => string | { error: string; retryable: boolean } | undefined;
  /** How long applied change ids are remembered, in ms (default 24 h). */
  rememberMs?: number;
  now?: () => number;
}

type Result = { key: string; status: 'ok' } | { key: string; status: 'error'; error: string; retryable?: boolean };

export interface Receiver {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Current values per key (what a CRM would hold). */
  records: Map<string, Values>;
  /** Changes applied (a change id seen before is not applied again). */
  applied: number;
  /** Changes received again after they were applied, answered without applying them. */
  duplicates: number;
  /** Requests refused, with why. */
  refused: Array<{ status: number; reason: string }>;
  /** Keys erased by `segsync forget` erase events ({type: 'erase', mapping, key, erasure_id}). */
  erased: string[];
  /** Forgets everything (records, applied ids, counters), as a freshly started receiver would. */
  clear(): void;
}

export function createWebhookReceiver(opts: ReceiverOptions): Receiver {
  const tolerance = opts.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  const now = opts.now ?? Date.now;
  const rememberMs = opts.rememberMs ?? 24 * 3600_000;
  // Ids of applied changes, with when. Only what was applied is remembered: a refusal is worked out again on
  // each try, so a change refused as retryable gets a fresh answer when it comes back.
  const applied = new Map<string, { at: number; result: Result }>();

  const r: Receiver = {
    records: new Map(),
    applied: 0,
    duplicates: 0,
    refused: [],
    erased: [],
    clear() {
      r.records.clear();
      applied.clear();
      r.applied = 0;
      r.duplicates = 0;
      r.refused.length = 0;
      r.erased.length = 0;
    },
    async handle(req, res) {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const raw = Buffer.concat(chunks).toString('utf8');
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      };
      if (req.method !== 'POST') return send(405, { error: 'POST only' });

      const check = verifyWebhookSignature(opts.secret, header(req, TIMESTAMP_HEADER), raw, header(req, SIGNATURE_HEADER), { toleranceSec: tolerance, now: now() });
      if (!check.ok) {
        r.refused.push({ status: 401, reason: check.reason });
        return send(401, { error: check.message });
      }
      let body: { type?: string; key?: string; mapping?: string; on_removed?: string; changes?: IncomingChange[]; keys?: string[] };
      try {
        body = JSON.parse(raw);
      } catch {
        return send(400, { error: 'body is not JSON' });
      }

      // An erasure (segsync forget): delete everything about the person, then answer 2xx.
      if (body.type === 'erase') {
        if (typeof body.key !== 'string' || !body.key) return send(400, { error: 'erase event without a key' });
        r.records.delete(body.key);
        r.erased.push(body.key);
        return send(200, { erased: true });
      }

      if (req.url === '/read') {
        const keys = Array.isArray(body.keys) ? body.keys : [];
        return send(200, { records: keys.filter((k) => r.records.has(k)).map((key) => ({ key, values: r.records.get(key) })) });
      }

      // Oldest first (a Map keeps insertion order), so expiry stops at the first id still fresh.
      for (const [id, v] of applied) {
        if (now() - v.at <= rememberMs) break;
        applied.delete(id);
      }
      const results = (body.changes ?? []).map((c): Result => {
        const earlier = typeof c.id === 'string' ? applied.get(c.id) : undefined;
        if (earlier) {
          r.duplicates++;
          return earlier.result;
        }
        const problem = opts.validate?.(c);
        if (typeof problem === 'string') return { key: c.key, status: 'error', error: problem };
        if (problem) return { key: c.key, status: 'error', error: problem.error, retryable: problem.retryable };
        if (c.op === 'remove' && body.on_removed === 'delete') r.records.delete(c.key);
        else if (c.op === 'remove') r.records.set(c.key, Object.fromEntries(Object.keys(c.before ?? {}).map((f) => [f, null])));
        else r.records.set(c.key, { ...r.records.get(c.key), ...c.after });
        r.applied++;
        const result: Result = { key: c.key, status: 'ok' };
        if (typeof c.id === 'string') applied.set(c.id, { at: now(), result });
        return result;
      });
      const response = JSON.stringify({ results });
      send(200, response);
    },
  };
  return r;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export async function startWebhookReceiver(opts: ReceiverOptions & { port?: number; host?: string }): Promise<{ url: string; receiver: Receiver; close(): Promise<void> }> {
  const receiver = createWebhookReceiver(opts);
  const server = createServer((req, res) => {
    receiver.handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    receiver,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret) {
    console.error('set WEBHOOK_SECRET (the same value the segsync connection uses)');
    process.exit(2);
  }
  const { url } = await startWebhookReceiver({ secret, port: Number(process.env.PORT ?? 8787) });
  console.log(`segsync webhook receiver on ${url}/segsync (read-back: ${url}/read)`);
}
