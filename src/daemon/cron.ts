import cron from 'node-cron';

/**
 * Cron arithmetic node-cron does not offer: the previous time a schedule fired. The daemon compares it with
 * the last recorded run to decide on a catch-up run after downtime. Fields come from node-cron's own parser
 * and the final check is node-cron's own matcher (day-of-month `L`, `1#2` and friends), so both agree on
 * what a schedule means; only the walk backwards is ours.
 */

/** node-cron's problems with an expression, as one message, or null when it is valid. */
export function cronProblem(expression: string): string | null {
  const v = cron.validateDetailed(expression);
  if (v.valid) return null;
  return v.errors.map((e) => `${e.field}${e.value === undefined ? '' : ` '${e.value}'`}: ${e.message}`).join('; ') || 'invalid cron expression';
}

interface LocalParts { month: number; day: number; hour: number; minute: number; second: number }

const formatters = new Map<string, Intl.DateTimeFormat>();
function localParts(date: Date, timezone: string): LocalParts {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(timezone, f);
  }
  const out: Record<string, number> = {};
  for (const p of f.formatToParts(date)) if (p.type !== 'literal') out[p.type] = Number(p.value);
  return { month: out.month ?? 0, day: out.day ?? 0, hour: out.hour ?? 0, minute: out.minute ?? 0, second: out.second ?? 0 };
}

/**
 * The latest instant strictly before `before` at which `expression` fires in `timezone`, or null if there is
 * none within `horizonDays` (a yearly schedule still resolves with the default).
 */
export function previousFire(expression: string, before: Date, timezone = 'UTC', horizonDays = 400): Date | null {
  const fields = cron.parse(expression);
  const task = cron.createTask(expression, () => {}, { timezone });
  const seconds = [...fields.second].sort((a, b) => b - a);
  const limit = before.getTime() - horizonDays * 86_400_000;
  // Start at the last whole minute that can hold a fire time before `before`.
  let t = Math.floor((before.getTime() - 1) / 60_000) * 60_000;
  try {
    while (t >= limit) {
      const p = localParts(new Date(t), timezone);
      const intoMinute = p.second * 1000 + (t % 1000);
      const minuteStart = t - intoMinute;
      if (!fields.month.includes(p.month)) {
        t = minuteStart - ((p.day - 1) * 86_400 + p.hour * 3600 + p.minute * 60) * 1000 - 60_000;
      } else if (!fields.hour.includes(p.hour)) {
        t = minuteStart - p.minute * 60_000 - 60_000;
      } else if (!fields.minute.includes(p.minute)) {
        t = minuteStart - 60_000;
      } else {
        const candidate = seconds.map((s) => minuteStart + s * 1000).find((ms) => ms < before.getTime());
        if (candidate !== undefined && task.match(new Date(candidate))) return new Date(candidate);
        // Month, hour, minute and second fit, so the day (day of month / week) does not: skip the whole day.
        t = candidate === undefined ? minuteStart - 60_000 : minuteStart - (p.hour * 3600 + p.minute * 60) * 1000 - 60_000;
      }
    }
    return null;
  } finally {
    void task.destroy();
  }
}
