import { capBody, DestinationError } from '../../src/errors.ts';

/**
 * The small HTTP layer the fetch-based destinations (CDPs, webhook) share: one POST with a timeout tied to
 * the run's AbortSignal, and the classification every caller needs: network trouble, 429 and 5xx are
 * retryable (with the server's Retry-After), other 4xx are not. Nothing here retries; the engine does.
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
 * POSTs and returns the answer whatever its status; throws a retryable DestinationError only when no
 * answer came (connection refused or reset, timeout). An abort of the run itself is rethrown as is.
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
    if (timeout.aborted) {
      throw new DestinationError('TIMEOUT', `${init.what}: no answer within ${init.timeoutMs} ms`, { cause: err, retryable: true });
    }
    const code = (err as { cause?: { code?: string } }).cause?.code;
    throw new DestinationError('NETWORK', `${init.what}: ${code ?? (err as Error).message} (the request may or may not have been received)`, { cause: err, retryable: true });
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
