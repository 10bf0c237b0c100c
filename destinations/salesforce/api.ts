import { createHash } from 'node:crypto';
import pRetry, { AbortError } from 'p-retry';
import { BudgetExhaustedError, capBody, DestinationError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import type { Connection } from './auth.ts';
import { setRateBudgetUsed } from '../../src/metrics.ts';

/**
 * Every Salesforce call goes through `SfApi.call`: it refuses to spend past the configured share of the
 * org's daily API budget (read from `Sforce-Limit-Info` after each response, shared by every mapping of the
 * process), turns jsforce errors into segsync's error family by their stable errorCode, and retries writes
 * on network errors and 5xx, which jsforce never retries for PATCH/POST.
 */

/** The org's daily API budget as last reported; one per org + credential, kept in ctx.shared. */
export interface OrgBudget {
  used: number;
  limit: number;
  /** Calls sent and not yet answered: counted against the budget before their usage header arrives. */
  inFlight: number;
  exhausted: string | null;
  /** The org for metrics: its instance URL (no credential). */
  account: string;
}

export function sharedBudget(shared: Map<string, unknown>, instanceUrl: string, credential: string): OrgBudget {
  const key = `salesforce:${instanceUrl}:${createHash('sha256').update(credential).digest('hex').slice(0, 12)}`;
  let b = shared.get(key) as OrgBudget | undefined;
  if (!b) {
    b = { used: 0, limit: 0, inFlight: 0, exhausted: null, account: instanceUrl };
    shared.set(key, b);
  }
  return b;
}

/** errorCodes (REST envelope) that mean the same request may succeed later. */
const TRANSIENT_CODES = new Set(['UNKNOWN_EXCEPTION', 'SERVER_UNAVAILABLE', 'REQUEST_RUNNING_TOO_LONG', 'UNABLE_TO_LOCK_ROW',
  'ERROR_HTTP_500', 'ERROR_HTTP_502', 'ERROR_HTTP_503', 'ERROR_HTTP_504', 'ERROR_HTTP_420', 'ERROR_HTTP_429']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export function classify(err: unknown, what: string): DestinationError {
  if (err instanceof DestinationError) return err;
  const e = err as { errorCode?: unknown; name?: unknown; message?: unknown; data?: unknown };
  const code = typeof e.errorCode === 'string' ? e.errorCode : undefined;
  // Query errors quote the SOQL, whose IN (...) list holds record keys (often e-mail addresses): literals go.
  const text = what.startsWith('query') ? String(e.message ?? '').replace(/'(?:[^'\\]|\\.)*'/g, "'…'") : String(e.message ?? '');
  const message = `${what}: ${code ?? String(e.name ?? 'Error')}: ${capBody(text)}`;
  if (code === 'REQUEST_LIMIT_EXCEEDED') {
    return new BudgetExhaustedError('SALESFORCE_REQUEST_LIMIT_EXCEEDED', `${message} (the org's daily API request limit is spent)`, { cause: err, status: 403 });
  }
  if (code === 'INVALID_SESSION_ID') {
    return new DestinationError('SALESFORCE_SESSION_INVALID', `${message} (the session expired and could not be refreshed: supply a fresh SALESFORCE_ACCESS_TOKEN or use client credentials / JWT)`, { cause: err, status: 401 });
  }
  const net = networkCode(err);
  if (net) return new DestinationError('NETWORK', `${what}: network error ${net}`, { cause: err, retryable: true });
  if (code && TRANSIENT_CODES.has(code)) return new DestinationError(`SALESFORCE_${code}`, message, { cause: err, retryable: true });
  if (err instanceof TypeError && /fetch failed/.test(String(e.message))) return new DestinationError('NETWORK', `${what}: network error`, { cause: err, retryable: true });
  return new DestinationError(code ? `SALESFORCE_${code}` : 'SALESFORCE_ERROR', message, { cause: err, retryable: false });
}

export class SfApi {
  readonly conn: Connection;
  readonly budget: OrgBudget;
  readonly budgetShare: number;
  private readonly log: Logger;
  private readonly retryBaseMs: number;

  constructor(conn: Connection, budget: OrgBudget, share: number, log: Logger, retryBaseMs: number) {
    this.conn = conn;
    this.budget = budget;
    this.budgetShare = share;
    this.log = log;
    this.retryBaseMs = retryBaseMs;
  }

  /** Throws BudgetExhaustedError when the next call would pass the configured share of the daily budget. */
  guard(): void {
    if (this.budget.exhausted) throw new BudgetExhaustedError('SALESFORCE_BUDGET_SHARE', this.budget.exhausted);
    const { used, limit, inFlight } = this.budget;
    if (limit > 0 && used + inFlight + 1 > Math.floor(limit * this.budgetShare)) {
      this.budget.exhausted = `Salesforce API budget guard: ${used} of ${limit} daily requests used; segsync stops at ${Math.round(this.budgetShare * 100)}% (budget_share) and defers the rest to a later run`;
      this.log.warn({ used, limit, share: this.budgetShare }, 'salesforce daily API budget share reached; stopping');
      throw new BudgetExhaustedError('SALESFORCE_BUDGET_SHARE', this.budget.exhausted);
    }
  }

  private noteUsage(): void {
    const usage = (this.conn.limitInfo as { apiUsage?: { used: number; limit: number } } | undefined)?.apiUsage;
    if (usage) {
      // The latest reading wins, so a new day's lower count lifts the guard in a long-lived process.
      this.budget.used = usage.used;
      this.budget.limit = usage.limit;
      if (usage.limit > 0) setRateBudgetUsed('salesforce', this.budget.account, usage.used / usage.limit, 'daily');
    }
  }

  /** One API call: budget guard, usage bookkeeping, error classification. No retry. */
  async once<T>(what: string, fn: () => Promise<T>, opts: { guard?: boolean } = {}): Promise<T> {
    if (opts.guard !== false) this.guard();
    this.budget.inFlight += 1;
    try {
      return await fn();
    } catch (err) {
      const e = classify(err, what);
      if (e instanceof BudgetExhaustedError) this.budget.exhausted = e.message;
      throw e;
    } finally {
      this.budget.inFlight -= 1;
      this.noteUsage();
    }
  }

  /** A write call, retried on network errors and 5xx with exponential backoff; never on validation errors. */
  async write<T>(what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return pRetry(async () => {
      try {
        return await this.once(what, fn);
      } catch (err) {
        if (err instanceof DestinationError && err.retryable) throw err;
        throw new AbortError(err as Error);
      }
    }, {
      retries: 3, minTimeout: this.retryBaseMs, factor: 2, randomize: true, ...(signal ? { signal } : {}),
      onFailedAttempt: ({ error, attemptNumber }) => { this.log.warn({ what, attempt: attemptNumber, code: (error as DestinationError).code }, 'salesforce write failed; retrying'); },
    });
  }
}
