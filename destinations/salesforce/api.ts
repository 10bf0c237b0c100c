import { createHash } from 'node:crypto';
import { BudgetExhaustedError, capBody, DestinationError } from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import type { Connection } from './auth.ts';
import { setRateBudgetUsed } from '../../src/metrics.ts';

/**
 * Every Salesforce call goes through `SfApi.call`: it refuses to spend past the configured share of the
 * org's daily API budget (read from `Sforce-Limit-Info` after each response, shared by every mapping of the
 * process) and turns jsforce errors into segsync's error family by their stable errorCode. Nothing here
 * retries: the engine does, from the classification (jsforce's own retries are switched off in auth.ts).
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
  'ERROR_HTTP_408', 'ERROR_HTTP_420', 'ERROR_HTTP_429']);
/** Network failures before the request could leave (no connection): sending again is safe and nothing happened. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'ENETDOWN', 'EHOSTUNREACH', 'EHOSTDOWN',
  'UND_ERR_CONNECT_TIMEOUT']);
/** Network failures once the request may have been written: the org may have applied it. */
const IN_DOUBT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED']);

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (NOT_SENT_CODES.has(code) || IN_DOUBT_CODES.has(code))) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * A jsforce or network error as segsync's error family, by the org's stable errorCode (jsforce keeps no HTTP
 * status: a body that is not Salesforce's error envelope comes as ERROR_HTTP_<status>). Retryable: network
 * errors, 5xx, 408/420/429, row locks; `inDoubt` when the request may have reached the org (a reset or a
 * timeout after it was written); REQUEST_LIMIT_EXCEEDED is the day's budget.
 */
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
    return new DestinationError('SALESFORCE_SESSION_INVALID', `${message} (the session expired and could not be refreshed: supply a fresh access_token or use client credentials / JWT)`, { cause: err, status: 401 });
  }
  const net = networkCode(err);
  if (net) {
    const inDoubt = IN_DOUBT_CODES.has(net);
    return new DestinationError('NETWORK', `${what}: network error ${net}${inDoubt ? ' (the request may have reached Salesforce)' : ''}`, { cause: err, retryable: true, inDoubt });
  }
  const status = code ? /^ERROR_HTTP_(\d{3})$/.exec(code)?.[1] : undefined;
  if ((code && TRANSIENT_CODES.has(code)) || (status && status.startsWith('5'))) {
    return new DestinationError(`SALESFORCE_${code}`, message, { cause: err, retryable: true, ...(status ? { status: Number(status) } : {}) });
  }
  // jsforce gives up on a response that never came (its own timeout) or fetch fails without a code.
  if (e.name === 'AbortError' || (err instanceof TypeError && /fetch failed/.test(String(e.message)))) {
    return new DestinationError('NETWORK', `${what}: no answer (${String(e.name)}); the request may have reached Salesforce`, { cause: err, retryable: true, inDoubt: true });
  }
  return new DestinationError(code ? `SALESFORCE_${code}` : 'SALESFORCE_ERROR', message, { cause: err, retryable: false, ...(status ? { status: Number(status) } : {}) });
}

export class SfApi {
  readonly conn: Connection;
  readonly budget: OrgBudget;
  readonly budgetShare: number;
  private readonly log: Logger;

  constructor(conn: Connection, budget: OrgBudget, share: number, log: Logger) {
    this.conn = conn;
    this.budget = budget;
    this.budgetShare = share;
    this.log = log;
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

  /**
   * One API call: budget guard, usage bookkeeping, error classification. No retry. `read`: the call changes
   * nothing in the org (describe, SOQL), so a lost answer leaves nothing in doubt.
   */
  async once<T>(what: string, fn: () => Promise<T>, opts: { guard?: boolean; read?: boolean } = {}): Promise<T> {
    if (opts.guard !== false) this.guard();
    this.budget.inFlight += 1;
    try {
      return await fn();
    } catch (err) {
      const e = classify(err, what);
      if (e instanceof BudgetExhaustedError) this.budget.exhausted = e.message;
      if (opts.read && e.inDoubt) throw new DestinationError(e.code, e.message, { cause: err, retryable: e.retryable, ...(e.status ? { status: e.status } : {}) });
      throw e;
    } finally {
      this.budget.inFlight -= 1;
      this.noteUsage();
    }
  }
}
