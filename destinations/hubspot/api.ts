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

export function budgetFor(shared: Map<string, unknown>, conn: HubSpotConnection): RateBudget {
  // One budget per account: the token identifies the private app and its account; only a hash is kept.
  const key = `hubspot:${conn.baseUrl}:${createHash('sha256').update(conn.accessToken).digest('hex').slice(0, 16)}`;
  let b = shared.get(key) as RateBudget | undefined;
  if (!b) {
    b = new RateBudget({ tenSecondly: conn.tenSecondly, intervalMs: 10_000, daily: conn.daily, dailyReserve: conn.dailyReserve });
    b.account = key.slice('hubspot:'.length);
    shared.set(key, b);
  }
  return b;
}

export class HubSpotApi {
  readonly client: Client;
  readonly budget: RateBudget;
  private readonly timeoutMs: number;

  private constructor(client: Client, conn: HubSpotConnection, budget: RateBudget) {
    this.client = client;
    this.budget = budget;
    this.timeoutMs = conn.requestTimeoutMs;
  }

  /** The SDK is loaded on first use, so processes whose mappings never go to HubSpot do not carry it. */
  static async open(conn: HubSpotConnection, budget: RateBudget): Promise<HubSpotApi> {
    const { Client: SdkClient } = await import('@hubspot/api-client');
    return new HubSpotApi(new SdkClient({ accessToken: conn.accessToken, basePath: conn.baseUrl }), conn, budget);
  }

  async call<T>(what: string, fn: (client: Client) => Promise<HttpInfoLike<T>>, signal?: AbortSignal): Promise<HttpInfoLike<T>> {
    signal?.throwIfAborted();
    const slot = await this.budget.acquire(signal);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const pending = fn(this.client);
      // The SDK has no timeout or abort: race it, and swallow the late answer of an abandoned call.
      pending.catch(() => undefined);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DestinationError('HUBSPOT_TIMEOUT', `HubSpot ${what}: no answer within ${this.timeoutMs} ms`, { retryable: true })), this.timeoutMs);
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
      throw this.classify(what, err);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  private classify(what: string, err: unknown): unknown {
    if (err instanceof DestinationError) return err;
    if (!isApiException(err)) {
      if (err instanceof Error && err.name === 'AbortError') return err;
      // fetch failed, ECONNRESET, socket hang up: the request may or may not have been applied; upserts are idempotent.
      const msg = err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err);
      return new DestinationError('HUBSPOT_NETWORK', `HubSpot ${what}: ${msg}`, { retryable: true, cause: err });
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
      const wait = this.budget.pause(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined);
      return new DestinationError('HUBSPOT_RATE_LIMIT_TEN_SECONDLY', `HubSpot ${what}: ${String(body.policyName ?? 'rate')} limit reached`, { ...base, retryable: true, retryAfterMs: wait });
    }
    if (err.code === 401) return new DestinationError('HUBSPOT_UNAUTHORIZED', `HubSpot ${what}: access token rejected (401): ${detail}; check HUBSPOT_ACCESS_TOKEN`, base);
    if (err.code === 403) return new DestinationError('HUBSPOT_FORBIDDEN', `HubSpot ${what}: the private app lacks a scope (403): ${detail}`, base);
    if (err.code >= 500) return new DestinationError('HUBSPOT_SERVER_ERROR', `HubSpot ${what}: ${err.code} ${detail}`, { ...base, retryable: true });
    if (err.code === 400) return new HubSpotBadRequest(`HubSpot ${what}: ${detail}`, body, base);
    return new DestinationError(`HUBSPOT_HTTP_${err.code}`, `HubSpot ${what}: ${err.code} ${detail}`, base);
  }
}
