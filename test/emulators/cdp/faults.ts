import { prng } from '../../helpers/prng.ts';
/**
 * Seeded fault injection for the CDP emulator. A test either queues exact faults (`queue`) or asks for a
 * random mix at given rates with a seed, so a failing run can be replayed exactly.
 *
 * `phase: 'after'` means the emulator ingests the events first and then fails the response: the case where a
 * client cannot know whether its batch landed, which is what deterministic messageIds exist for.
 */
/** 'pass' lets one request through untouched, so a queued fault can target the second request of a batch. */
export type FaultKind = 'status' | 'reset' | 'pass';

export interface Fault {
  kind: FaultKind;
  /** HTTP status for kind 'status' (5xx, 429). */
  status?: number;
  /** Retry-After header value in seconds (429 / 503). */
  retryAfterSec?: number;
  /** Answer body instead of the flavour's usual message. */
  body?: string;
  phase: 'before' | 'after';
}

export interface RandomFaults {
  seed: number;
  /** Probability (0..1) per request of each fault. */
  rate5xx?: number;
  rate429?: number;
  rateReset?: number;
  /** Retry-After seconds sent with random 429s (default 1). */
  retryAfterSec?: number;
}

export class FaultPlan {
  private readonly queued: Fault[] = [];
  private random: { next: () => number; cfg: RandomFaults } | null = null;
  /** Faults actually injected, in order, for assertions. */
  readonly injected: Fault[] = [];

  queue(...faults: Array<Partial<Fault> & { kind: FaultKind }>): void {
    for (const f of faults) this.queued.push({ phase: 'before', ...f });
  }

  randomly(cfg: RandomFaults | null): void {
    this.random = cfg ? { next: prng(cfg.seed), cfg } : null;
  }

  clear(): void {
    this.queued.length = 0;
    this.random = null;
  }

  /** The fault for the next request, if any. */
  take(): Fault | null {
    const q = this.queued.shift();
    if (q) {
      this.injected.push(q);
      return q;
    }
    if (!this.random) return null;
    const { next, cfg } = this.random;
    const r = next();
    const phase = next() < 0.5 ? 'before' : 'after';
    let fault: Fault | null = null;
    const r5 = cfg.rate5xx ?? 0;
    const r429 = cfg.rate429 ?? 0;
    const rReset = cfg.rateReset ?? 0;
    if (r < r5) fault = { kind: 'status', status: 503, phase };
    else if (r < r5 + r429) fault = { kind: 'status', status: 429, retryAfterSec: cfg.retryAfterSec ?? 1, phase: 'before' };
    else if (r < r5 + r429 + rReset) fault = { kind: 'reset', phase };
    if (fault) this.injected.push(fault);
    return fault;
  }
}
