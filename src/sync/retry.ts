import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import { SegsyncError } from '../errors.ts';
import type { Logger } from '../log.ts';

/**
 * The engine's one retry policy. Connectors never retry: they classify errors (SegsyncError.retryable,
 * retryAfterMs, inDoubt) and the engine retries here — whole batches, pre-flight checks and schema reads
 * alike. Backoff is exponential with jitter from 500 ms, at most 60 s, and never shorter than what the
 * other side asked for (Retry-After).
 */
export const RETRY_POLICY = { retries: 5, minTimeout: 500, maxTimeout: 60_000, factor: 2, randomize: true } as const;

export function isRetryable(err: unknown): boolean {
  return err instanceof SegsyncError && err.retryable;
}

export interface RetryOptions {
  /** Stops further attempts and waits; never discards an answer that came back. */
  signal: AbortSignal;
  log: Logger;
  /** What is being tried, for the log. */
  what: string;
  /** Fields for the log line of a failed attempt. */
  context?: Record<string, unknown>;
  retries?: number;
}

/**
 * Runs `fn` until it succeeds, a non-retryable error comes, the retries are spent, or `signal` fires. An
 * answer is always returned once it came back, even when the signal fired meanwhile (p-retry 9 alone would
 * throw the abort reason after a successful attempt, and the answer would be lost). When it gives up, it
 * throws the last error of an attempt (not the abort reason), so the caller can classify it.
 */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  let answered = false;
  let answer: T;
  let lastError: unknown;
  try {
    return await pRetry(async (attempt) => {
      try {
        answer = await fn(attempt);
      } catch (err) {
        // Kept here, not in onFailedAttempt: p-retry checks the signal first, and an attempt that failed while
        // a stop was under way (a timeout after sending: in doubt) must still be reported as what it was.
        lastError = err;
        throw err;
      }
      answered = true;
      return answer;
    }, {
      ...RETRY_POLICY,
      retries: o.retries ?? RETRY_POLICY.retries,
      signal: o.signal,
      shouldRetry: ({ error }) => isRetryable(error) && !o.signal.aborted,
      onFailedAttempt: async ({ error, attemptNumber, retryDelay, retriesLeft }) => {
        const e = error instanceof SegsyncError ? error : undefined;
        o.log.warn({ ...o.context, code: e?.code ?? 'UNEXPECTED', err: error.message, attempt: attemptNumber, retriesLeft: e?.retryable ? retriesLeft : 0 }, `${o.what} failed`);
        // Retry-After longer than the backoff: wait the difference (the backoff itself follows).
        const wait = e?.retryable ? (e.retryAfterMs ?? 0) - retryDelay : 0;
        if (wait > 0 && retriesLeft > 0) await sleep(wait, undefined, { signal: o.signal }).catch(() => {});
      },
    });
  } catch (err) {
    if (answered) return answer!;
    if (lastError !== undefined) throw lastError;
    // Stopped before any attempt: nothing was sent.
    throw new NotSentError(`${o.what}: stopped before the request was sent`, { cause: err });
  }
}

/** withRetries was stopped before its first attempt: nothing left, nothing is in doubt. */
export class NotSentError extends SegsyncError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('NOT_SENT', message, opts);
  }
}
