import { LockedError } from '../errors.ts';
import { modelFreshnessLag, observeStage } from '../metrics.ts';
import { MODELS_JOB, setStatus, type DaemonContext } from './context.ts';
import type { Job, Trigger } from './scheduler.ts';
import { runJob } from './job-lifecycle.ts';
import { slaLimits } from './sla.ts';
import { runMonitors } from '../sync/monitors.ts';

/**
 * The model rebuild on `models.schedule`. One replica builds at a time (a session advisory lock on a
 * dedicated connection; the embedded database has one process anyway). After a successful build, mappings
 * with `after: [models]` and no schedule of their own run.
 */
export function modelsJob(ctx: DaemonContext): Job {
  return {
    name: MODELS_JOB,
    schedule: ctx.app.config.settings.models.schedule,
    run: (trigger) => build(ctx, trigger),
  };
}

async function build(ctx: DaemonContext, trigger: Trigger): Promise<void> {
  const { settings } = ctx.app.config;
  const log = ctx.app.log.child({ job: MODELS_JOB });
  const built = await runJob(ctx, {
    job: MODELS_JOB, trigger, log,
    sla: { stage: 'build', limitMs: slaLimits(settings).build, mapping: MODELS_JOB },
    // The build takes its own lock and refuses at once when another replica (or process) is building.
    lockedElsewhere: (err) => err instanceof LockedError && err.code === 'MODELS_LOCKED',
    work: async () => {
      const startedAt = new Date();
      await ctx.engine.buildModels(ctx.app.warehouse.pool, { schema: settings.models.schema, payments: settings.models.payments, log });
      return { startedAt, finishedAt: new Date() };
    },
    lastRun: (b) => ({ runId: null, status: 'succeeded', startedAt: b.startedAt, finishedAt: b.finishedAt }),
    onFailure: (message, at) => { ctx.lastBuild = { ok: false, at, error: message }; },
    failureEvent: (message) => ({ kind: 'build_failed', severity: 'error', mapping: null, message: `model build failed: ${message}`, details: { trigger }, dedupKey: 'build_failed:models' }),
  });
  if (!built) return;
  const seconds = (built.finishedAt.getTime() - built.startedAt.getTime()) / 1000;
  ctx.lastBuild = { ok: true, at: built.finishedAt };
  observeStage('build', MODELS_JOB, seconds);
  log.info({ trigger, seconds }, 'models built');
  const fresh = await ctx.engine.modelFreshness(ctx.app.warehouse.pool, settings.models.schema).catch(() => null);
  if (fresh) modelFreshnessLag.set({ model: 'rfm_current_segments' }, Math.max(0, (Date.now() - fresh.getTime()) / 1000));
  if (ctx.signal.aborted) return;
  // The monitors judge the fresh models before anything that depends on them runs.
  if (settings.monitors.length) {
    await runMonitors(ctx.app).catch((err: unknown) => log.error({ err: (err as Error).message }, 'the data-quality monitors could not be evaluated'));
  }
  for (const m of ctx.app.config.mappings) {
    if (m.value.after?.includes(MODELS_JOB) && !m.value.schedule) void ctx.scheduler.fire(m.value.name, 'after-models');
  }
}
