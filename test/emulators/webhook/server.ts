import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { createWebhookReceiver, type Receiver, type ReceiverOptions } from '../../../docs/examples/webhook-receiver.ts';
import { FaultPlan } from '../cdp/faults.ts';

/**
 * The sample webhook receiver (docs/examples/webhook-receiver.ts) behind a thin layer that records every raw
 * request and can inject faults before the receiver sees a request, for tests.
 */

export interface CapturedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  status: number | 'reset';
}

export interface WebhookEmulator {
  url: string;
  receiver: Receiver;
  faults: FaultPlan;
  requests: CapturedRequest[];
  /** Sends a captured (or altered) request again, as an attacker replaying it would. */
  replay(req: { path: string; headers: IncomingHttpHeaders; body: string }): Promise<{ status: number; text: string }>;
  close(): Promise<void>;
}

export async function startWebhookEmulator(opts: ReceiverOptions): Promise<WebhookEmulator> {
  const receiver = createWebhookReceiver(opts);
  const faults = new FaultPlan();
  const requests: CapturedRequest[] = [];

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const captured: CapturedRequest = { path: req.url ?? '/', headers: req.headers, body, status: 200 };
    requests.push(captured);
    // Faults hit deliveries only, not the empty check batch a run starts with.
    const taken = body.includes('"changes":[]') ? null : faults.take();
    const fault = taken?.kind === 'pass' ? null : taken;
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
    // Hand the receiver a fresh stream of the same bytes (this layer consumed the original).
    const replayed = Object.assign(Readable.from([Buffer.from(body)]), { method: req.method, url: req.url, headers: req.headers });
    const origWriteHead = res.writeHead.bind(res);
    res.writeHead = ((status: number, ...rest: unknown[]) => {
      captured.status = status;
      return (origWriteHead as (...a: unknown[]) => typeof res)(status, ...rest);
    }) as typeof res.writeHead;
    await receiver.handle(replayed as never, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
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
}
