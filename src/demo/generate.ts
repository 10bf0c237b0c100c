import { Rng, streamKey } from './random.ts';

/** One generated payment, in the payments contract. */
export interface DemoPayment {
  user_id: string;
  payment_id: string;
  payment_date: Date;
  /** Decimal text with two places, e.g. "42.10" (exact, unlike a float). */
  payment_amount: string;
}

export interface DemoOptions {
  /** Size of the customer population; those whose first purchase falls after the window do not appear. */
  users: number;
  /** Calendar months in the window, the last one being the month that holds `end`. */
  months: number;
  /** Any non-negative safe integer. */
  seed: number;
  /** Payments are strictly before this instant (default: today 00:00 UTC). */
  end?: Date | undefined;
  /** Only payments at or after this instant are produced; earlier months are skipped, not generated. */
  from?: Date | undefined;
}

/** Relative demand by calendar month (Jan..Dec): a quiet start of the year, November and December peaks. */
const SEASON = [0.8, 0.85, 0.95, 0.95, 1, 0.95, 0.9, 0.9, 1, 1.05, 1.4, 1.7];

/** How long customers stay: the monthly chance of stopping for good, per kind of customer. */
const LOYALTY: ReadonlyArray<readonly [number, number]> = [[0.01, 0.25], [0.05, 0.5], [0.3, 0.25]];

/** Share of the population already buying when the window opens; the rest arrive month by month. */
const EXISTING_SHARE = 0.4;
const MONTHLY_ARRIVAL = 0.08;

export function startOfUtcMonth(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

export function addUtcMonths(d: Date, n: number): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()));
}

/** Default end: the start of today (UTC), so a demo's as-of-now sees recent payments and no future ones. */
export function defaultEnd(now = new Date()): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
}

/** First month of the window: fixed by `end` and `months`, so `months + 1` with `end + 1 month` keeps it. */
export function windowStart(end: Date, months: number): Date {
  return addUtcMonths(startOfUtcMonth(new Date(end.getTime() - 1)), -(months - 1));
}

export const userId = (i: number) => `u${String(i + 1).padStart(6, '0')}`;

/**
 * Deterministic, realistic payments: the same options give the same rows, in the same order (by user, then
 * time). Frequency is Pareto-skewed (a few heavy buyers), amounts lognormal around a per-customer level,
 * customers arrive during the window and some stop buying for good, and demand peaks in November and
 * December. Each (user, month) draws from its own stream, so a longer window (same start) or a larger
 * population yields a superset of the rows.
 */
export function* demoPayments(opts: DemoOptions): Generator<DemoPayment> {
  checkOptions(opts);
  const end = opts.end ?? defaultEnd();
  const start = windowStart(end, opts.months);
  const endMs = end.getTime();
  const fromMs = opts.from?.getTime() ?? -Infinity;
  for (let u = 0; u < opts.users; u++) {
    const r = new Rng(streamKey(opts.seed, u));
    const existing = r.next() < EXISTING_SHARE;
    const join = existing ? 0 : 1 + r.geometric(MONTHLY_ARRIVAL);
    const stop = join + 1 + r.geometric(r.pick(LOYALTY));
    const rate = Math.min(r.pareto(0.2, 1.5), 10);
    const level = Math.log(30) + 0.7 * r.normal();
    const id = userId(u);
    for (let m = join; m < Math.min(stop, opts.months); m++) {
      const monthStart = addUtcMonths(start, m);
      const monthEnd = addUtcMonths(start, m + 1);
      if (monthEnd.getTime() <= fromMs) continue;
      const calendar = monthStart.getUTCMonth();
      const mr = new Rng(streamKey(opts.seed, u, m));
      // A newcomer's arrival month holds their first purchase; existing customers just go on buying.
      const count = Math.max(mr.poisson(rate * SEASON[calendar]!), m === join && !existing ? 1 : 0);
      const span = monthEnd.getTime() - monthStart.getTime();
      const times: number[] = [];
      for (let k = 0; k < count; k++) times.push(monthStart.getTime() + Math.floor(mr.next() * span / 1000) * 1000);
      times.sort((a, b) => a - b);
      const yyyymm = `${monthStart.getUTCFullYear()}${String(calendar + 1).padStart(2, '0')}`;
      for (let k = 0; k < count; k++) {
        // Drawn for every payment, kept or not, so the stream does not depend on end or from.
        const cents = Math.max(1, Math.round(Math.exp(level + 0.5 * mr.normal()) * (calendar === 11 ? 1.15 : 1) * 100));
        const t = times[k]!;
        if (t >= endMs || t < fromMs) continue;
        yield {
          user_id: id,
          payment_id: `demo-${opts.seed}-${u + 1}-${yyyymm}-${k + 1}`,
          payment_date: new Date(t),
          payment_amount: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`,
        };
      }
    }
  }
}

function checkOptions(o: DemoOptions): void {
  const bad = (what: string) => { throw new RangeError(`demo data: ${what}`); };
  if (!Number.isSafeInteger(o.users) || o.users < 1) bad(`users must be a positive integer, got ${o.users}`);
  if (!Number.isSafeInteger(o.months) || o.months < 1 || o.months > 600) bad(`months must be an integer from 1 to 600, got ${o.months}`);
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) bad(`seed must be a non-negative integer, got ${o.seed}`);
  if (o.end && Number.isNaN(o.end.getTime())) bad('end is not a valid date');
}
