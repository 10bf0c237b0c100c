import type { Mapping } from '../config/mapping.ts';
import { maskPii } from '../log.ts';
import { observeStage, reconciledTotal } from '../metrics.ts';
import { reconcileMapping } from '../sync/reconcile.ts';
import { setStatus, type DaemonContext } from './context.ts';
import type { Job, Trigger } from './scheduler.ts';
import { runJob } from './job-lifecycle.ts';
import { slaLimits } from './sla.ts';

/**
 * A mapping's scheduled read-back (`reconcile: {schedule, sample}`): "delivered" is only believed after the
 * destination is asked. A separate job from the sync (`<mapping>:reconcile`), so it has its own schedule and
 * overlap guard; the engine's run lock keeps it from reading while a run moves the state. Drift or missing
 * records are an event, since they mean the CRM does not hold what the ledger says.
 */
export const reconcileJobName = (mapping: string) => `${mapping}:reconcile`;

export function reconcileJob(ctx: DaemonContext, mapping: Mapping): Job | null {
  if (!mapping.reconcile) return null;
  return { name: reconcileJobName(mapping.name), schedule: mapping.reconcile.schedule, run: (trigger) => readBack(ctx, mapping.name, trigger) };
}

async function readBack(ctx: DaemonContext, name: string, trigger: Trigger): Promise<void> {
  const mapping = ctx.app.config.mappings.find((m) => m.value.name === name)?.value;
  if (!mapping?.reconcile) return;
  const { sample, all, repair } = mapping.reconcile;
  const done = await runJob(ctx, {
    job: reconcileJobName(name), trigger, log: ctx.app.log.child({ mapping: name }),
    sla: { stage: 'reconcile', limitMs: slaLimits(ctx.app.config.settings, mapping).reconcile, mapping: name },
    work: async () => {
      const startedAt = new Date();
      const summary = await reconcileMapping(ctx.app, name, { sample, all, repair, signal: ctx.signal, shared: ctx.shared });
      return { summary, startedAt, finishedAt: new Date() };
    },
    lastRun: (r) => ({ runId: null, status: 'succeeded', startedAt: r.startedAt, finishedAt: r.finishedAt }),
    failureEvent: (message) => ({ kind: 'reconcile_failed', severity: 'error', mapping: name, message: `${name}: read-back failed: ${message}`, details: { trigger }, dedupKey: `reconcile_failed:${name}` }),
  });
  if (!done) return;
  const { summary } = done;
  observeStage('reconcile', name, (done.finishedAt.getTime() - done.startedAt.getTime()) / 1000);
  for (const [status, n] of Object.entries(summary.counts)) if (n) reconciledTotal.inc({ mapping: name, status }, n);
  ctx.app.log.info({ mapping: name, checked: summary.checked, counts: summary.counts, repaired: summary.repaired }, 'read-back finished');
  const off = summary.counts.drifted + summary.counts.missing;
  if (off > 0) {
    await ctx.events.record({
      kind: 'reconcile_drift', severity: summary.counts.missing > 0 ? 'error' : 'warning', mapping: name,
      message: `${name}: ${summary.counts.missing} missing and ${summary.counts.drifted} drifted of ${summary.checked} records read back${repair ? `; ${summary.repaired} queued for the next run` : ''}`,
      // Event details reach logs and alert channels: record keys (often e-mail addresses) are masked.
      details: { counts: summary.counts, repaired: summary.repaired, examples: summary.examples.map((e) => ({ ...e, key: maskPii(e.key) })) },
      dedupKey: `reconcile_drift:${name}`,
    });
  }
}
