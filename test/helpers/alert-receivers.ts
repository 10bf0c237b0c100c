import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';

export interface Received {
  at: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
}

/**
 * A local HTTP receiver on 127.0.0.1 (port 0) that records every request. `reply` decides the answer per
 * request (default 200 with `okBody`): tests make it answer 429 or 500 to see what the sender does.
 */
export async function startReceiver(opts: { okStatus?: number; okBody?: string; reply?: (r: Received, n: number, res: ServerResponse) => boolean | void } = {}) {
  const requests: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => { body += d; });
    req.on('end', () => {
      let json: unknown = null;
      try {
        json = JSON.parse(body);
      } catch {
        json = null;
      }
      const r: Received = { at: Date.now(), method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json };
      requests.push(r);
      if (opts.reply?.(r, requests.length, res)) return;
      res.writeHead(opts.okStatus ?? 200, { 'content-type': 'text/plain' }).end(opts.okBody ?? 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** An SMTP server in the test process (smtp-server), every message parsed with mailparser. */
export async function startSmtp() {
  const mails: ParsedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, _session, callback) {
      simpleParser(stream).then((m) => { mails.push(m); callback(); }, callback);
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { url: `smtp://127.0.0.1:${port}/?tls=off`, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
