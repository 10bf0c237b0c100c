import { MODELS_JOB, type DaemonContext } from './context.ts';
import { previousFire } from './cron.ts';
import { modelsFreshness } from './freshness.ts';

/**
 * After downtime, each job runs at most once to catch up: when its latest recorded start is before the
 * schedule's previous fire time (it missed at least one tick), or its latest run was interrupted. A job that
 * never ran waits for its first tick: starting a daemon should not surprise anyone with an unscheduled sync.
 * The models go first, so mappings that depend on them see the new build.
 */
export async function catchUp(ctx: DaemonContext, interrupted: ReadonlySet<string>): Promise<void> {
  const { settings, mappings } = ctx.app.config;
  const { timezone } = settings.daemon;
  const now = new Date();
  const log = ctx.app.log.child({ component: 'catch-up' });

  if (settings.models.schedule) {
    const due = previousFire(settings.models.schedule, now, timezone);
    const fresh = await modelsFreshness(ctx.app.warehouse.pool, settings, ctx.app.config.root, ctx.engine).catch(() => null);
    if (due && (!fresh?.at || fresh.at < due)) {
      log.info({ job: MODELS_JOB, missed: due, freshness: fresh?.at ?? null }, 'models missed a scheduled build; building once now');
      const build = ctx.scheduler.fire(MODELS_JOB, 'catch-up');
      if (build) await build;
    }
  }

  for (const m of mappings) {
    const { name, schedule } = m.value;
    if (!schedule) continue;
    const due = previousFire(schedule, now, timezone);
    const last = await ctx.engine.lastRun(ctx.app, name);
    const missed = Boolean(due && last && last.startedAt < due);
    if (interrupted.has(name) || missed) {
      log.info({ mapping: name, missed: due, lastStart: last?.startedAt ?? null, interrupted: interrupted.has(name) }, 'catching up once now');
      void ctx.scheduler.fire(name, 'catch-up');
    }
  }
}
