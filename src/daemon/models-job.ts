import { describeError, LockedError } from '../errors.ts';
import { modelFreshnessLag, observeStage, runsInFlight, skippedTicks } from '../metrics.ts';
import { MODELS_JOB, setStatus, type DaemonContext } from './context.ts';
import type { Job, Trigger } from './scheduler.ts';
import { slaLimits, watchStage } from './sla.ts';

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
  const startedAt = new Date();
  const watch = watchStage(ctx.events, { stage: 'build', limitMs: slaLimits(settings).build, mapping: MODELS_JOB });
  setStatus(ctx, MODELS_JOB, { state: 'running', trigger });
  runsInFlight.inc();
  try {
    await ctx.engine.buildModels(ctx.app.warehouse.pool, { schema: settings.models.schema, payments: settings.models.payments, log });
    const finishedAt = new Date();
    ctx.lastBuild = { ok: true, at: finishedAt };
    observeStage('build', MODELS_JOB, (finishedAt.getTime() - startedAt.getTime()) / 1000);
    setStatus(ctx, MODELS_JOB, { state: 'idle', trigger, lastRun: { runId: null, status: 'succeeded', startedAt, finishedAt } });
    log.info({ trigger, seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000 }, 'models built');
    const fresh = await ctx.engine.modelFreshness(ctx.app.warehouse.pool, settings.models.schema).catch(() => null);
    if (fresh) modelFreshnessLag.set({ model: 'rfm_current_segments' }, Math.max(0, (Date.now() - fresh.getTime()) / 1000));
  } catch (err) {
    // The build takes its own lock and refuses at once when another replica (or process) is building.
    if (err instanceof LockedError && err.code === 'MODELS_LOCKED') {
      skippedTicks.inc({ job: MODELS_JOB, reason: 'replica' });
      log.info({ trigger }, 'model build running on another replica; this tick is skipped');
      setStatus(ctx, MODELS_JOB, { state: 'skipped', reason: 'running on another replica', trigger });
      return;
    }
    const message = describeError(err);
    const finishedAt = new Date();
    ctx.lastBuild = { ok: false, at: finishedAt, error: message };
    setStatus(ctx, MODELS_JOB, { state: 'idle', trigger, lastRun: { runId: null, status: 'failed', startedAt, finishedAt, error: message } });
    await ctx.events.record({ kind: 'build_failed', severity: 'error', mapping: null, message: `model build failed: ${message}`, details: { trigger }, dedupKey: 'build_failed:models' });
    return;
  } finally {
    runsInFlight.dec();
    watch.stop();
  }
  if (ctx.signal.aborted) return;
  for (const m of ctx.app.config.mappings) {
    if (m.value.after?.includes(MODELS_JOB) && !m.value.schedule) void ctx.scheduler.fire(m.value.name, 'after-models');
  }
}
