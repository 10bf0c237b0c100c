import { createHash } from 'node:crypto';
import type { Client } from '@hubspot/api-client';
import { BudgetExhaustedError, capBody, DestinationError } from '../../src/errors.ts';
import { RateBudget } from './budget.ts';
import type { HubSpotConnection } from './config.ts';

/**
 * Every HubSpot call goes through `HubSpotApi.call`: it takes a slot in the account's shared budget, gives up
 * after the request timeout, learns from the rate-limit headers, and turns failures into segsync errors.
 *
 * The SDK's own retries stay off (numberOfApiCallRetries unset): its RetryDecorator sleeps 10 s x attempt on
 * a TEN_SECONDLY 429 whatever the headers say, retries 5xx after 200 ms x attempt with no jitter, prints to
 * console.error, and cannot see our budget or the run's AbortSignal. The engine retries whole batches with
 * backoff and jitter honouring retryAfterMs, and the budget spaces calls so 429s stay rare; two retry layers
 * would multiply attempts (6 x the engine's) and hide 429 storms from the logs.
 * Headers come from the SDK's `*WithHttpInfo` methods on success and from ApiException.headers on failure.
 */

export interface HttpInfoLike<T> { httpStatusCode: number; headers: Record<string, string>; data: T }

interface ApiExceptionLike { code: number; body: unknown; headers: Record<string, string> }

function isApiException(e: unknown): e is ApiExceptionLike {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number' && 'body' in e && 'headers' in e;
}

/** The 400 answer of a batch call, kept so the caller can find which records it was about. */
export class HubSpotBadRequest extends DestinationError {
  readonly body: Record<string, unknown>;
  constructor(message: string, body: Record<string, unknown>, opts: { cause?: unknown; requestId?: string }) {
    super('HUBSPOT_VALIDATION_ERROR', message, { ...opts, status: 400, retryable: false });
    this.body = body;
  }
}

function accountKey(conn: HubSpotConnection): string {
  // The token identifies the private app and its account; only a hash is kept.
  return `hubspot:${conn.baseUrl}:${createHash('sha256').update(conn.accessToken).digest('hex').slice(0, 16)}`;
}

export function budgetFor(shared: Map<string, unknown>, conn: HubSpotConnection): RateBudget {
  const key = accountKey(conn);
  let b = shared.get(key) as RateBudget | undefined;
  if (!b) {
    b = new RateBudget({ tenSecondly: conn.tenSecondly, intervalMs: 10_000, daily: conn.daily, dailyReserve: conn.dailyReserve });
    b.account = key.slice('hubspot:'.length);
    shared.set(key, b);
  }
  return b;
}

/** HubSpot's CRM search endpoints allow 5 requests per second per account, beside the other limits. */
export const SEARCH_PER_SECOND = 5;

/**
 * The account's search window, shared like the main budget. Search answers carry no rate-limit headers, so
 * this one never learns: it holds to the documented 5 per second. Its daily side is the main budget's.
 */
export function searchBudgetFor(shared: Map<string, unknown>, conn: HubSpotConnection): RateBudget {
  const key = `${accountKey(conn)}:search`;
  let b = shared.get(key) as RateBudget | undefined;
  if (!b) {
    b = new RateBudget({ tenSecondly: SEARCH_PER_SECOND, intervalMs: 1_000, daily: Number.POSITIVE_INFINITY, dailyReserve: 0 });
    shared.set(key, b);
  }
  return b;
}

/** Network failures where the request never left: nothing can have been applied. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);

function errorCodes(err: unknown): string[] {
  const out: string[] = [];
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') out.push(code);
    for (const inner of (e as { errors?: unknown[] }).errors ?? []) {
      const c = (inner as { code?: unknown } | null)?.code;
      if (typeof c === 'string') out.push(c);
    }
  }
  return out;
}

export class HubSpotApi {
  readonly client: Client;
  readonly budget: RateBudget;
  readonly searchBudget: RateBudget;
  private readonly timeoutMs: number;

  private constructor(client: Client, conn: HubSpotConnection, budget: RateBudget, searchBudget: RateBudget) {
    this.client = client;
    this.budget = budget;
    this.searchBudget = searchBudget;
    this.timeoutMs = conn.requestTimeoutMs;
  }

  /** The SDK is loaded on first use, so processes whose mappings never go to HubSpot do not carry it. */
  static async open(conn: HubSpotConnection, budget: RateBudget, searchBudget: RateBudget): Promise<HubSpotApi> {
    const { Client: SdkClient } = await import('@hubspot/api-client');
    // numberOfApiCallRetries stays unset (0): see the comment at the top.
    return new HubSpotApi(new SdkClient({ accessToken: conn.accessToken, basePath: conn.baseUrl }), conn, budget, searchBudget);
  }

  /**
   * A CRM search call: it waits for room in the search window (5 a second) as well as in the main budget,
   * which keeps counting it towards the day.
   */
  async search<T>(what: string, fn: (client: Client) => Promise<HttpInfoLike<T>>, signal?: AbortSignal): Promise<HttpInfoLike<T>> {
    signal?.throwIfAborted();
    const slot = await this.searchBudget.acquire(signal);
    try {
      return await this.call(what, fn, signal, true);
    } finally {
      slot.done();
    }
  }

  async call<T>(what: string, fn: (client: Client) => Promise<HttpInfoLike<T>>, signal?: AbortSignal, search = false): Promise<HttpInfoLike<T>> {
    signal?.throwIfAborted();
    const slot = await this.budget.acquire(signal);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const pending = fn(this.client);
      // The SDK has no timeout or abort: race it, and swallow the late answer of an abandoned call.
      pending.catch(() => undefined);
      const timeout = new Promise<never>((_, reject) => {
        // The request left: HubSpot may have applied it. In doubt, retryable (upserts and ticket updates are idempotent).
        timer = setTimeout(() => reject(new DestinationError('HUBSPOT_TIMEOUT', `HubSpot ${what}: no answer within ${this.timeoutMs} ms`, { retryable: true, inDoubt: true })), this.timeoutMs);
      });
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(signal?.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      const info = await Promise.race([pending, timeout, aborted]);
      slot.done();
      this.budget.observe(info.headers);
      return info;
    } catch (err) {
      slot.done();
      if (signal?.aborted) throw err; // stopping, not a HubSpot failure: no retry, no error code
      throw this.classify(what, err, search);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Turns a failure into a segsync error, never retrying: connection refused (or no such host) is retryable
   * and certainly not applied; a reset or a dropped connection after the request was written is retryable and
   * in doubt; 429 TEN_SECONDLY (and the search API's SECONDLY) is retryable after the wait the headers give;
   * 429 DAILY is BudgetExhaustedError; 5xx is retryable; 401, 403 and other 4xx are not.
   */
  private classify(what: string, err: unknown, search = false): unknown {
    if (err instanceof DestinationError) return err;
    if (!isApiException(err)) {
      if (err instanceof Error && err.name === 'AbortError') return err;
      const msg = err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err);
      const codes = errorCodes(err);
      if (codes.some((c) => NEVER_SENT.has(c))) {
        return new DestinationError('HUBSPOT_UNREACHABLE', `HubSpot ${what}: ${msg} (nothing was sent)`, { retryable: true, inDoubt: false, cause: err });
      }
      // ECONNRESET, "other side closed", socket hang up: the request was written; HubSpot may have applied it.
      return new DestinationError('HUBSPOT_NETWORK', `HubSpot ${what}: ${msg}`, { retryable: true, inDoubt: true, cause: err });
    }
    this.budget.observe(err.headers);
    const body = (typeof err.body === 'object' && err.body !== null ? err.body : { message: String(err.body) }) as Record<string, unknown>;
    const requestId = typeof body.correlationId === 'string' ? body.correlationId : undefined;
    const detail = capBody(typeof body.message === 'string' ? body.message : body);
    const base = { cause: err, status: err.code, ...(requestId ? { requestId } : {}) };
    if (err.code === 429) {
      if (body.policyName === 'DAILY') {
        this.budget.exhaustDaily();
        return new BudgetExhaustedError('HUBSPOT_RATE_LIMIT_DAILY', `HubSpot daily limit reached (${what}); the rest waits for tomorrow`, base);
      }
      const retryAfter = Number(err.headers['retry-after']);
      const told = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined;
      if (search && body.policyName !== 'TEN_SECONDLY_ROLLING') {
        // The search API's own per-second limit: hold searches only, for one second (or what HubSpot says).
        const wait = this.searchBudget.pause(told);
        return new DestinationError('HUBSPOT_RATE_LIMIT_SECONDLY', `HubSpot ${what}: ${String(body.policyName ?? 'search')} limit reached`, { ...base, retryable: true, retryAfterMs: wait });
      }
      // Without Retry-After, one window as the headers just told the budget (X-HubSpot-RateLimit-Interval-Milliseconds).
      const wait = this.budget.pause(told);
      return new DestinationError('HUBSPOT_RATE_LIMIT_TEN_SECONDLY', `HubSpot ${what}: ${String(body.policyName ?? 'rate')} limit reached`, { ...base, retryable: true, retryAfterMs: wait });
    }
    if (err.code === 401) return new DestinationError('HUBSPOT_UNAUTHORIZED', `HubSpot ${what}: access token rejected (401): ${detail}; check the connection's access_token (a private-app token)`, base);
    if (err.code === 403) return new DestinationError('HUBSPOT_FORBIDDEN', `HubSpot ${what}: the private app lacks a scope (403): ${detail}`, base);
    if (err.code >= 500) return new DestinationError('HUBSPOT_SERVER_ERROR', `HubSpot ${what}: ${err.code} ${detail}`, { ...base, retryable: true });
    if (err.code === 400) return new HubSpotBadRequest(`HubSpot ${what}: ${detail}`, body, base);
    return new DestinationError(`HUBSPOT_HTTP_${err.code}`, `HubSpot ${what}: ${err.code} ${detail}`, base);
  }
}
