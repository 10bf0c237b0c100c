import { daemonActor } from '../state/actor.ts';
import type { Mapping } from '../config/mapping.ts';
import { countRecords, lastSuccess, observeStage, runsTotal } from '../metrics.ts';
import { setStatus, type DaemonContext } from './context.ts';
import type { RunSummary } from './sync-port.ts';
import { checkGate } from './gate.ts';
import type { Job, Trigger } from './scheduler.ts';
import { runJob } from './job-lifecycle.ts';
import { checkFinishedStages, slaLimits } from './sla.ts';

/**
 * One mapping as a scheduled job: gate (model freshness), run through the engine with the daemon's abort
 * signal, then metrics, SLA checks and events. A run that another replica holds is skipped quietly
 * (that replica is doing the work); everything else that did not happen is recorded.
 */
export function mappingJob(ctx: DaemonContext, mapping: Mapping): Job {
  const name = mapping.name;
  return {
    name,
    schedule: mapping.schedule,
    run: (trigger) => runOnce(ctx, name, trigger),
  };
}

async function runOnce(ctx: DaemonContext, name: string, trigger: Trigger): Promise<void> {
  // Read the mapping at run time: a reload may have changed it since the job was created.
  const mapping = ctx.app.config.mappings.find((m) => m.value.name === name)?.value;
  if (!mapping) return;
  const log = ctx.app.log.child({ mapping: name, destination: mapping.destination.connection });

  const gate = await checkGate(ctx, mapping);
  if (ctx.signal.aborted) return;
  if (!gate.ok) {
    const runId = await ctx.engine.recordBlocked(ctx.app, name, `blocked: ${gate.cause}: ${gate.reason}`).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'could not record the blocked run');
      return null;
    });
    runsTotal.inc({ mapping: name, status: 'blocked' });
    const now = new Date();
    setStatus(ctx, name, { state: 'blocked', reason: `blocked: ${gate.cause}`, trigger, lastRun: { runId, status: 'blocked', startedAt: now, finishedAt: now, error: gate.reason } });
    await ctx.events.record({
      kind: 'blocked', severity: 'error', mapping: name, runId,
      message: `${name} blocked: ${gate.cause}: ${gate.reason}`,
      details: { cause: gate.cause, trigger, ...gate.details },
      dedupKey: `blocked:${name}:${gate.cause}`,
    });
    return;
  }

  const limits = slaLimits(ctx.app.config.settings, mapping);
  const summary = await runJob<RunSummary>(ctx, {
    job: name, trigger, log,
    sla: { stage: 'run', limitMs: limits.run, mapping: name },
    lockedElsewhere: (err) => ctx.engine.isLocked(err),
    work: () => ctx.engine.runMapping(ctx.app, name, { signal: ctx.signal, wait: false, actor: daemonActor(trigger), shared: ctx.shared }),
    lastRun: (s) => ({ runId: s.runId, status: s.status, startedAt: s.startedAt, finishedAt: s.finishedAt, ...(s.error ? { error: s.error } : {}) }),
    onFailure: () => runsTotal.inc({ mapping: name, status: 'failed' }),
    failureEvent: (message, err) => ({ kind: 'run_failed', severity: 'error', mapping: name, message: `${name} failed to run: ${message}`, details: { trigger, code: (err as { code?: string }).code }, dedupKey: `run_failed:${name}` }),
  });
  if (!summary) return;
  if (summary.status === 'held') {
    // One hold, one event (the engine raised it when it held the run); later ticks only show it.
    if (!summary.heldEarlier) runsTotal.inc({ mapping: name, status: 'held' });
    setStatus(ctx, name, { state: 'held', reason: summary.error ?? 'held for approval', trigger, lastRun: { runId: summary.runId, status: 'held', startedAt: summary.startedAt, finishedAt: summary.finishedAt } });
    if (!summary.heldEarlier) log.warn({ run: summary.runId, trigger }, 'run held for approval');
    return;
  }
  record(ctx, mapping, summary);
  log.info({ run: summary.runId, status: summary.status, counts: summary.counts, trigger }, 'run finished');
  if (summary.stages) await checkFinishedStages(ctx.events, limits, name, summary.runId, summary.stages);
  if (summary.status === 'failed' || summary.status === 'partial') {
    await ctx.events.record({
      kind: summary.status === 'failed' ? 'run_failed' : 'run_partial',
      severity: summary.status === 'failed' ? 'error' : 'warning',
      mapping: name, runId: summary.runId,
      message: `${name} run ${summary.runId} ${summary.status}: ${summary.counts.failed} failed, ${summary.counts.dead} dead${summary.error ? `: ${summary.error}` : ''}`,
      details: { counts: summary.counts, trigger },
      dedupKey: `run_${summary.status}:${name}`,
    });
  }
}

function record(ctx: DaemonContext, mapping: Mapping, s: RunSummary): void {
  const name = mapping.name;
  const destination = ctx.app.config.settings.connections[mapping.destination.connection]?.type ?? mapping.destination.connection;
  runsTotal.inc({ mapping: name, status: s.status });
  countRecords(name, destination, 'unchanged', 'unchanged', s.counts.unchanged);
  if (s.outcomes) for (const o of s.outcomes) countRecords(name, destination, o.op, o.status, o.n);
  else for (const status of ['delivered', 'failed', 'deferred'] as const) countRecords(name, destination, 'all', status, s.counts[status]);
  countRecords(name, destination, 'all', 'dead', s.counts.dead);
  observeStage('run', name, (s.finishedAt.getTime() - s.startedAt.getTime()) / 1000);
  for (const [stage, seconds] of Object.entries(s.stages ?? {})) observeStage(stage, name, seconds);
  if (s.status === 'succeeded') lastSuccess.set({ mapping: name }, s.finishedAt.getTime() / 1000);
}
