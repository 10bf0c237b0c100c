import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { createWebhookReceiver, type Receiver, type ReceiverOptions } from '../../../docs/examples/webhook-receiver.ts';
import { FaultPlan } from '../cdp/faults.ts';

/**
 * The sample webhook receiver (docs/examples/webhook-receiver.ts) behind a thin layer that records every raw
 * request and can inject faults, for tests. A fault with phase 'before' answers instead of the receiver; with
 * phase 'after' the receiver applies the request first and then the answer is replaced (or the connection
 * reset): the case where the sender cannot know the changes landed.
 *
 * `gatewayCache: true` puts a request-level idempotency layer in front of the receiver, as API gateways and
 * Stripe-style APIs have: every answer the receiver gave is stored under the request's Idempotency-Key and
 * replayed, without asking the receiver, to a later request with the same key, per-record failures included.
 */

export interface CapturedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  status: number | 'reset';
}

export interface WebhookEmulatorOptions extends ReceiverOptions {
  gatewayCache?: boolean;
}

export interface WebhookEmulator {
  url: string;
  /** Requests answered from the gateway cache (gatewayCache only). */
  replayedFromCache: number;
  receiver: Receiver;
  faults: FaultPlan;
  requests: CapturedRequest[];
  /** Sends a captured (or altered) request again, as an attacker replaying it would. */
  replay(req: { path: string; headers: IncomingHttpHeaders; body: string }): Promise<{ status: number; text: string }>;
  close(): Promise<void>;
}

export async function startWebhookEmulator(opts: WebhookEmulatorOptions): Promise<WebhookEmulator> {
  const receiver = createWebhookReceiver(opts);
  const faults = new FaultPlan();
  const requests: CapturedRequest[] = [];
  const cache = new Map<string, { status: number; body: string }>();

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const captured: CapturedRequest = { path: req.url ?? '/', headers: req.headers, body, status: 200 };
    requests.push(captured);
    // Faults hit deliveries only, not the empty check batch a run starts with.
    const taken = body.includes('"changes":[]') ? null : faults.take();
    const fault = taken?.kind === 'pass' ? null : taken;
    if (fault?.phase !== 'after') {
      if (fault?.kind === 'reset') {
        captured.status = 'reset';
        req.socket.destroy();
        return;
      }
      if (fault) {
        captured.status = fault.status ?? 503;
        res.writeHead(captured.status, { 'content-type': 'application/json', ...(fault.retryAfterSec === undefined ? {} : { 'retry-after': String(fault.retryAfterSec) }) });
        res.end(fault.body ?? '');
        return;
      }
    }
    const key = req.headers['idempotency-key'];
    const cached = opts.gatewayCache && typeof key === 'string' ? cache.get(key) : undefined;
    if (cached) {
      emu.replayedFromCache++;
      captured.status = cached.status;
      res.writeHead(cached.status, { 'content-type': 'application/json' });
      res.end(cached.body);
      return;
    }
    // Hand the receiver a fresh stream of the same bytes (this layer consumed the original), and keep its answer.
    const replayed = Object.assign(Readable.from([Buffer.from(body)]), { method: req.method, url: req.url, headers: req.headers });
    let status = 200;
    let text = '';
    const sink = {
      writeHead(s: number) { status = s; return sink; },
      end(b?: string) { text = b ?? ''; },
    };
    await receiver.handle(replayed as never, sink as never);
    if (opts.gatewayCache && typeof key === 'string' && req.url !== '/read') cache.set(key, { status, body: text });
    if (fault?.kind === 'reset') {
      captured.status = 'reset';
      req.socket.destroy();
      return;
    }
    if (fault) {
      status = fault.status ?? 503;
      text = fault.body ?? '';
    }
    captured.status = status;
    res.writeHead(status, { 'content-type': 'application/json', ...(fault?.retryAfterSec === undefined ? {} : { 'retry-after': String(fault.retryAfterSec) }) });
    res.end(text);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const emu: WebhookEmulator = {
    url,
    replayedFromCache: 0,
    receiver,
    faults,
    requests,
    async replay(r) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.headers)) if (typeof v === 'string' && k !== 'content-length' && k !== 'host' && k !== 'connection') headers[k] = v;
      const answer = await fetch(`${url}${r.path}`, { method: 'POST', headers, body: r.body });
      return { status: answer.status, text: await answer.text() };
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  return emu;
}
