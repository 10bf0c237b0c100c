import { previousFire } from './cron.ts';
import type { DaemonContext } from './context.ts';

/**
 * The answer to "scheduled syncs that silently never run": every interval, each scheduled mapping whose
 * latest run (on any replica) started before the last two fire times is reported as overdue (event kind
 * `overdue`, one per incident through its dedup key). That catches a run stuck for two periods, a lock
 * held by a wedged replica, and a scheduler that stopped firing, none of which produce an error by
 * themselves.
 */
export function startWatchdog(ctx: DaemonContext, intervalMs: number, startedAt: Date): () => void {
  let checking = false;
  const reported = new Set<string>();
  const check = async () => {
    if (checking || ctx.signal.aborted) return;
    checking = true;
    try {
      const { settings, mappings } = ctx.app.config;
      const now = new Date();
      for (const m of mappings) {
        const { name, schedule } = m.value;
        if (!schedule) continue;
        const last1 = previousFire(schedule, now, settings.daemon.timezone);
        const last2 = last1 && previousFire(schedule, last1, settings.daemon.timezone);
        // Only ticks this daemon was up for count: a restart is the catch-up's business.
        if (!last2 || last2 < startedAt) continue;
        const last = await ctx.engine.lastRun(ctx.app, name);
        if (last && last.startedAt >= last2) continue;
        const dedupKey = `overdue:${name}:${last?.runId ?? 'never'}`;
        if (reported.has(dedupKey)) continue;
        reported.add(dedupKey);
        await ctx.events.record({
          kind: 'overdue', severity: 'warning', mapping: name, runId: last?.runId ?? null,
          message: `${name} is overdue: no run started at ${last2.toISOString()} or ${last1!.toISOString()}; ${last ? `the latest started ${last.startedAt.toISOString()} (${last.status})` : 'it never ran'}`,
          details: { schedule, due: [last2, last1], last_run: last ?? null, running_here: ctx.scheduler.busy(name) },
          dedupKey,
        });
      }
    } catch (err) {
      ctx.app.log.warn({ err: (err as Error).message }, 'overdue check failed');
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => { void check(); }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
