import { capBody, DestinationError } from '../../src/errors.ts';

/**
 * The small HTTP layer the fetch-based destinations (CDPs, webhook) share: one POST with a timeout tied to
 * the run's AbortSignal, and the classification every caller needs: network trouble, 429 and 5xx are
 * retryable (with the server's Retry-After), other 4xx are not, and a request that may have been applied
 * without an answer coming back is `inDoubt`. Nothing here retries; the engine does.
 */

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** The server's request / correlation id header, when it sent one. */
  requestId: string | undefined;
}

const REQUEST_ID_HEADERS = ['x-request-id', 'request-id', 'x-correlation-id', 'x-amzn-requestid', 'cf-ray'];

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function requestIdOf(headers: Headers): string | undefined {
  for (const h of REQUEST_ID_HEADERS) {
    const v = headers.get(h);
    if (v) return v;
  }
  return undefined;
}

/**
 * The URL as it may appear in a message: scheme, host and path, without user info, query string or fragment
 * (where webhook providers put tokens), and with path segments that look like tokens replaced by `…`.
 */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const path = u.pathname.split('/').map((seg) => (isTokenLike(seg) ? '…' : seg)).join('/');
    return `${u.protocol}//${u.host}${path}`;
  } catch {
    return '(unparseable URL)';
  }
}

function isTokenLike(segment: string): boolean {
  return segment.length >= 20 && /[0-9]/.test(segment) && /[A-Za-z]/.test(segment);
}

/**
 * Connection errors that mean the request never left: nothing listens (ECONNREFUSED), the name does not
 * resolve, no route, or the connection could not be set up in time. Anything else (a reset, a socket closed by
 * the other side, a timeout waiting for the answer) may come after the server read the request.
 */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);

/** The system error codes of a failed fetch: its cause's, or each of an AggregateError's (both address families tried). */
function errorCodes(err: unknown): string[] {
  const cause = (err as { cause?: { code?: unknown; errors?: unknown } } | undefined)?.cause;
  const codes: string[] = [];
  if (typeof cause?.code === 'string') codes.push(cause.code);
  if (Array.isArray(cause?.errors)) for (const e of cause.errors as Array<{ code?: unknown }>) if (typeof e?.code === 'string') codes.push(e.code);
  return codes;
}

/**
 * POSTs and returns the answer whatever its status; throws a retryable DestinationError only when no answer
 * came. Never sent (connection refused, unknown host): retryable, not in doubt, and the message says the
 * receiver got nothing. Otherwise (reset, other side closed, timeout): retryable and `inDoubt`, since the
 * server may have read and applied the request before the connection broke. An abort of the run itself is
 * rethrown as is (the caller knows whether a request was in flight).
 */
export async function postOnce(url: string, init: { headers: Record<string, string>; body: string; timeoutMs: number; signal: AbortSignal; what: string }): Promise<HttpAnswer> {
  const timeout = AbortSignal.timeout(init.timeoutMs);
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: init.headers,
      body: init.body,
      redirect: 'manual',
      signal: AbortSignal.any([init.signal, timeout]),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, requestId: requestIdOf(res.headers) };
  } catch (err) {
    if (init.signal.aborted) throw init.signal.reason ?? err;
    const where = describeUrl(url);
    if (timeout.aborted) {
      throw new DestinationError('TIMEOUT', `${init.what}: no answer from ${where} within ${init.timeoutMs} ms (the request may have been received and applied)`, { cause: err, retryable: true, inDoubt: true });
    }
    const codes = errorCodes(err);
    if (codes.length && codes.every((c) => NEVER_SENT.has(c))) {
      const code = codes[0]!;
      const why = code === 'ECONNREFUSED' ? 'connection refused by' : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? `${code}: cannot resolve the host of` : `${code} connecting to`;
      throw new DestinationError('NETWORK', `${init.what}: ${why} ${where}: nothing was sent, the receiver got nothing`, { cause: err, retryable: true, inDoubt: false });
    }
    throw new DestinationError('NETWORK', `${init.what}: ${codes[0] ?? (err as Error).message} from ${where} after the request was sent (it may have been received and applied)`, { cause: err, retryable: true, inDoubt: true });
  }
}

/**
 * A DestinationError for a non-2xx answer: 429 and 5xx retryable with Retry-After, 408 retryable, the rest
 * permanent. `detail` is the server's own message (already extracted from its body shape).
 */
export function httpError(what: string, answer: HttpAnswer, detail: string): DestinationError {
  const { status } = answer;
  const retryable = status === 429 || status === 408 || status >= 500;
  const retryAfterMs = parseRetryAfter(answer.headers.get('retry-after'));
  const code = status === 429 ? 'RATE_LIMITED' : status === 401 || status === 403 ? 'UNAUTHORIZED' : status === 404 ? 'NOT_FOUND'
    : status === 413 ? 'REQUEST_TOO_LARGE' : status >= 500 ? 'SERVER_ERROR' : status >= 300 && status < 400 ? 'REDIRECTED' : 'REJECTED';
  const hint = status >= 300 && status < 400 ? ` (redirect to ${answer.headers.get('location') ?? '?'}; configure the final URL)` : '';
  return new DestinationError(code, `${what}: HTTP ${status}: ${capBody(detail)}${hint}`, {
    retryable,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    status,
    ...(answer.requestId === undefined ? {} : { requestId: answer.requestId }),
  });
}
