import { prng as rng } from '../../helpers/prng.ts';
/**
 * HubSpot's two request limits (a rolling ten-second window per app and a daily count per account) and seeded
 * fault injection. Time can be scaled so a test sees a ten-second window in a fraction of a second: the
 * headers then report the scaled window, as a client must adapt to whatever the headers say.
 */

export interface LimitSettings {
  /** Requests per rolling window (HubSpot Free/Starter: 100, Pro/Enterprise: 190). null = no limit. */
  tenSecondly: number | null;
  /** Requests per day per account. null = no limit. */
  daily: number | null;
  /** 10 = the ten-second window lasts one second. */
  timeScale: number;
  /**
   * Search requests per second per account (HubSpot: 5), a limit of its own: search calls count towards the
   * daily limit but not the ten-second window, and their answers carry no X-HubSpot-RateLimit-* headers.
   * null = no limit. Scaled by timeScale like the ten-second window.
   */
  search?: number | null;
}

export type RateVerdict =
  | { ok: true; headers: Record<string, string> }
  | { ok: false; policy: 'TEN_SECONDLY_ROLLING' | 'DAILY' | 'SECONDLY'; headers: Record<string, string> };

export class RateLimiter {
  settings: LimitSettings;
  private window: number[] = [];
  private searchWindow: number[] = [];
  dailyUsed = 0;

  constructor(settings: LimitSettings) {
    this.settings = settings;
  }

  get intervalMs(): number {
    return Math.max(1, Math.round(10_000 / this.settings.timeScale));
  }

  /** Counts one request if it is allowed, and says what the headers of its answer carry. */
  admit(now: number): RateVerdict {
    const { tenSecondly, daily } = this.settings;
    const interval = this.intervalMs;
    while (this.window.length > 0 && this.window[0]! <= now - interval) this.window.shift();
    const headers = (): Record<string, string> => {
      const h: Record<string, string> = {};
      if (tenSecondly !== null) {
        h['x-hubspot-ratelimit-interval-milliseconds'] = String(interval);
        h['x-hubspot-ratelimit-max'] = String(tenSecondly);
        h['x-hubspot-ratelimit-remaining'] = String(Math.max(0, tenSecondly - this.window.length));
      }
      if (daily !== null) {
        h['x-hubspot-ratelimit-daily'] = String(daily);
        h['x-hubspot-ratelimit-daily-remaining'] = String(Math.max(0, daily - this.dailyUsed));
      }
      return h;
    };
    if (daily !== null && this.dailyUsed >= daily) return { ok: false, policy: 'DAILY', headers: headers() };
    if (tenSecondly !== null && this.window.length >= tenSecondly) return { ok: false, policy: 'TEN_SECONDLY_ROLLING', headers: headers() };
    this.window.push(now);
    this.dailyUsed += 1;
    return { ok: true, headers: headers() };
  }

  get searchIntervalMs(): number {
    return Math.max(1, Math.round(1_000 / this.settings.timeScale));
  }

  /** Counts one search request if it is allowed: the daily count and the per-second search limit, no headers. */
  admitSearch(now: number): RateVerdict {
    const { daily } = this.settings;
    const limit = this.settings.search === undefined ? 5 : this.settings.search;
    while (this.searchWindow.length > 0 && this.searchWindow[0]! <= now - this.searchIntervalMs) this.searchWindow.shift();
    if (daily !== null && this.dailyUsed >= daily) {
      return { ok: false, policy: 'DAILY', headers: { 'x-hubspot-ratelimit-daily': String(daily), 'x-hubspot-ratelimit-daily-remaining': '0' } };
    }
    if (limit !== null && this.searchWindow.length >= limit) return { ok: false, policy: 'SECONDLY', headers: {} };
    this.searchWindow.push(now);
    this.dailyUsed += 1;
    return { ok: true, headers: {} };
  }

  /** Another app of the same account (a noisy neighbour) uses n requests of the current window. */
  consume(n: number, now: number): void {
    for (let i = 0; i < n; i++) this.window.push(now);
  }

  /**
   * A neighbour app takes what is left of the current window just before this request: HubSpot answers it
   * (and whatever else comes within the window) with the TEN_SECONDLY_ROLLING 429 and headers saying so.
   * A spent daily limit still wins, as in admit().
   */
  crowdOut(now: number): RateVerdict {
    const max = this.settings.tenSecondly;
    if (max !== null) {
      while (this.window.length > 0 && this.window[0]! <= now - this.intervalMs) this.window.shift();
      this.consume(Math.max(0, max - this.window.length), now);
    }
    const verdict = this.admit(now);
    return verdict.ok ? { ok: false, policy: 'TEN_SECONDLY_ROLLING', headers: verdict.headers } : verdict;
  }

  nextDay(): void {
    this.dailyUsed = 0;
    this.window = [];
    this.searchWindow = [];
  }
}

export interface FaultSettings {
  seed: number;
  /** Probabilities per request, each in [0, 1]. */
  serverError: number;
  timeout: number;
  reset: number;
  slow: number;
  slowMs: number;
  /** How long a "timeout" holds the request before dropping the connection. */
  timeoutMs: number;
  /** Probability that another app of the account fills the ten-second window just before a request: a 429. */
  rateLimit?: number;
}

export type Fault = 'none' | 'server_error' | 'timeout' | 'reset_before' | 'reset_after' | 'slow' | 'rate_limited';

/** What a test can ask for the next requests, in order: a fault ('none' lets one through), or a 429 of a policy whatever the counts say. */
export type ScriptedFault = Fault | 'unavailable' | 'rate_limited' | 'daily_limited';

export const NO_FAULTS: FaultSettings = { seed: 1, serverError: 0, timeout: 0, reset: 0, slow: 0, slowMs: 0, timeoutMs: 30_000 };

export class FaultInjector {
  settings: FaultSettings;
  private next: () => number;
  /** Faults for the next requests (one each, in order), before any random draw. */
  readonly script: ScriptedFault[] = [];

  constructor(settings: FaultSettings) {
    this.settings = settings;
    this.next = rng(settings.seed);
  }

  set(settings: Partial<FaultSettings>): void {
    this.settings = { ...this.settings, ...settings };
    this.next = rng(this.settings.seed);
  }

  /**
   * Draws the fault for one request. A reset is "after" half the time: the write is applied but the answer is
   * lost, which is what makes retries dangerous for a non-idempotent client.
   */
  draw(): Fault | ScriptedFault {
    const scripted = this.script.shift();
    if (scripted !== undefined) return scripted;
    const s = this.settings;
    const x = this.next();
    let edge = s.serverError;
    if (x < edge) return 'server_error';
    edge += s.timeout;
    if (x < edge) return 'timeout';
    edge += s.reset;
    if (x < edge) return this.next() < 0.5 ? 'reset_before' : 'reset_after';
    edge += s.slow;
    if (x < edge) return 'slow';
    // Last, so that the draws of settings without it stay what they were.
    edge += s.rateLimit ?? 0;
    if (x < edge) return 'rate_limited';
    return 'none';
  }
}
