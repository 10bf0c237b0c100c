import type { Mapping } from '../config/mapping.ts';
import type { Settings } from '../config/settings.ts';
import { slaBreaches } from '../metrics.ts';
import { durationMs, formatMs } from './duration.ts';
import type { EventLog } from './events.ts';

/**
 * SLAs: how long a stage may take. A breach does not stop the work (stopping a half-delivered run helps
 * nobody); it is recorded as an event for alerting. A stage still running at its limit is reported then
 * (severity warning) and again at twice the limit (error), so a hung run is noticed while it hangs.
 */

export type Stage = 'build' | 'run' | 'plan' | 'deliver' | 'reconcile';
export type SlaLimits = Partial<Record<Stage, number>>;

/** The mapping's own limits over the settings defaults, in ms. */
export function slaLimits(settings: Settings, mapping?: Mapping): SlaLimits {
  const merged: Record<string, string | undefined> = { ...settings.defaults.sla, ...(mapping?.sla ?? {}) };
  const out: SlaLimits = {};
  for (const [stage, value] of Object.entries(merged)) if (value) out[stage as Stage] = durationMs(value);
  return out;
}

export interface SlaWatch {
  /** Stops the timers; returns true when a breach was already recorded for this stage. */
  stop(): boolean;
}

export function watchStage(events: EventLog, opts: { stage: Stage; limitMs: number | undefined; mapping: string; runId?: () => number | null }): SlaWatch {
  if (opts.limitMs === undefined) return { stop: () => false };
  const limit = opts.limitMs;
  const started = Date.now();
  let breached = false;
  const report = (factor: number) => {
    breached = true;
    slaBreaches.inc({ mapping: opts.mapping, stage: opts.stage });
    const elapsed = Date.now() - started;
    void events.record({
      kind: 'sla_breach',
      severity: factor > 1 ? 'error' : 'warning',
      mapping: opts.mapping,
      runId: opts.runId?.() ?? null,
      message: `${opts.stage} of ${opts.mapping} still running after ${formatMs(elapsed)}, over its SLA of ${formatMs(limit)}`,
      details: { stage: opts.stage, limit_ms: limit, elapsed_ms: elapsed, still_running: true },
      dedupKey: `sla:${opts.mapping}:${opts.stage}:x${factor}`,
    });
  };
  const timers = [setTimeout(() => report(1), limit), setTimeout(() => report(2), limit * 2)];
  for (const t of timers) t.unref();
  return {
    stop() {
      for (const t of timers) clearTimeout(t);
      return breached;
    },
  };
}

/** Stages the engine timed (plan, deliver, reconcile) checked after the run, once it is known how long they took. */
export async function checkFinishedStages(events: EventLog, limits: SlaLimits, mapping: string, runId: number, stages: Partial<Record<Stage, number>>): Promise<void> {
  for (const [stage, seconds] of Object.entries(stages) as Array<[Stage, number]>) {
    const limit = limits[stage];
    if (limit === undefined || seconds * 1000 <= limit) continue;
    slaBreaches.inc({ mapping, stage });
    await events.record({
      kind: 'sla_breach',
      severity: seconds * 1000 > 2 * limit ? 'error' : 'warning',
      mapping,
      runId,
      message: `${stage} of ${mapping} took ${formatMs(seconds * 1000)}, over its SLA of ${formatMs(limit)}`,
      details: { stage, limit_ms: limit, elapsed_ms: Math.round(seconds * 1000), still_running: false },
      dedupKey: `sla:${mapping}:${stage}:run${runId}`,
    });
  }
}
