import { setTimeout as delay } from 'node:timers/promises';
import { BudgetExhaustedError } from '../../src/errors.ts';
import { setRateBudgetUsed } from '../../src/metrics.ts';

/**
 * One HubSpot account's request budget, shared by every mapping of the process (kept in ctx.shared): a rolling
 * window of N calls per interval and a daily count. It starts from the configured tier and then believes
 * HubSpot's X-HubSpot-RateLimit-* headers, including calls other integrations of the account made.
 *
 * A call occupies the window from the moment it is sent; once answered it is stamped with the answer's time,
 * which is never earlier than when HubSpot counted it, so our window always expires after HubSpot's does.
 */

export interface BudgetSettings { tenSecondly: number; intervalMs: number; daily: number; dailyReserve: number }

export interface Slot { done(): void }

/** An abortable pause that rejects with the signal's own reason, as the callers expect. */
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  delay(ms, undefined, signal ? { signal } : undefined).catch((err: unknown) => { throw signal?.aborted ? signal.reason : err; });

export class RateBudget {
  max: number;
  intervalMs: number;
  dailyRemaining: number;
  readonly dailyReserve: number;
  private dailyLimit: number;
  /** The account for metrics (API host and a hash of the token, never the token). */
  account = 'hubspot';
  /** Answer times of calls still inside the window (plus calls others made, learnt from the headers). */
  private stamps: number[] = [];
  private inFlight = 0;
  private pausedUntil = 0;
  private wake: Array<() => void> = [];
  private lastProbe = 0;
  /** When the day's budget is spent, one call per this period checks whether HubSpot's day has rolled over. */
  probeEveryMs = 15 * 60_000;
  /** Counters for benchmarks and logs. */

  constructor(s: BudgetSettings) {
    this.max = s.tenSecondly;
    this.intervalMs = s.intervalMs;
    this.dailyRemaining = s.daily;
    this.dailyLimit = s.daily;
    this.dailyReserve = s.dailyReserve;
  }

  private prune(now: number): void {
    const edge = now - this.intervalMs;
    let i = 0;
    while (i < this.stamps.length && this.stamps[i]! <= edge) i++;
    if (i > 0) this.stamps.splice(0, i);
  }

  /** Waits for room in the window; throws BudgetExhaustedError when the day's budget is spent. */
  async acquire(signal?: AbortSignal): Promise<Slot> {
    for (;;) {
      if (this.dailyRemaining - this.inFlight <= this.dailyReserve) {
        const now = Date.now();
        if (this.inFlight === 0 && now - this.lastProbe >= this.probeEveryMs) {
          // A long-lived daemon must find out when the day rolls over: let one call through; its headers tell.
          this.lastProbe = now;
          this.dailyRemaining = this.dailyReserve + 1;
          continue;
        }
        throw new BudgetExhaustedError('HUBSPOT_DAILY_BUDGET', `HubSpot daily request budget spent (${this.dailyRemaining} left, ${this.dailyReserve} reserved for other integrations)`);
      }
      const now = Date.now();
      this.prune(now);
      if (now >= this.pausedUntil && this.stamps.length + this.inFlight < this.max) break;
      const oldest = this.stamps[0];
      const until = Math.max(this.pausedUntil, oldest !== undefined ? oldest + this.intervalMs + 1 : now + this.intervalMs);
      await Promise.race([sleep(Math.max(1, until - now), signal), new Promise<void>((r) => this.wake.push(r))]);
    }
    this.inFlight += 1;
    let released = false;
    return {
      done: () => {
        if (released) return;
        released = true;
        this.inFlight -= 1;
        this.stamps.push(Date.now());
        const w = this.wake;
        this.wake = [];
        for (const f of w) f();
      },
    };
  }

  /** Adapts to what HubSpot says; call after the slot of the answered call is done. */
  observe(headers: Record<string, string | undefined>): void {
    const num = (k: string) => {
      const v = headers[k] ?? headers[k.toLowerCase()];
      const n = v === undefined ? NaN : Number(v);
      return Number.isFinite(n) ? n : undefined;
    };
    const interval = num('x-hubspot-ratelimit-interval-milliseconds');
    const max = num('x-hubspot-ratelimit-max');
    const remaining = num('x-hubspot-ratelimit-remaining');
    const dailyRemaining = num('x-hubspot-ratelimit-daily-remaining');
    const daily = num('x-hubspot-ratelimit-daily');
    if (daily !== undefined && daily > 0) this.dailyLimit = daily;
    if (interval !== undefined && interval > 0) this.intervalMs = interval;
    if (max !== undefined && max > 0) this.max = max;
    if (dailyRemaining !== undefined) this.dailyRemaining = dailyRemaining;
    else this.dailyRemaining -= 1;
    if (remaining !== undefined && max !== undefined) {
      const now = Date.now();
      this.prune(now);
      // HubSpot counted more calls in the window than we made: another app of the account is busy.
      const theirs = max - remaining - this.stamps.length - this.inFlight;
      for (let i = 0; i < theirs; i++) this.stamps.push(now);
      setRateBudgetUsed('hubspot', this.account, (max - remaining) / max, 'ten_secondly');
    }
    if (this.dailyLimit > 0) setRateBudgetUsed('hubspot', this.account, 1 - this.dailyRemaining / this.dailyLimit, 'daily');
  }

  /** A TEN_SECONDLY_ROLLING 429 despite the budget: hold every caller for one interval. */
  pause(ms = this.intervalMs): number {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
    return ms;
  }

  /** A DAILY 429: nothing more today. */
  exhaustDaily(): void {
    this.dailyRemaining = 0;
    this.lastProbe = Date.now();
  }
}
