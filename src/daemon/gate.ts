import type { Mapping } from '../config/mapping.ts';
import { modelFreshnessLag } from '../metrics.ts';
import { MODELS_JOB, type DaemonContext } from './context.ts';
import { durationMs, formatMs } from './duration.ts';
import { FreshnessError, modelsFreshness } from './freshness.ts';
import { blockingMonitors } from '../sync/monitors.ts';

/**
 * Whether a mapping may run now. A mapping with `after: [models]` waits for a build in progress, and is
 * blocked when the latest build failed or the model is older than its `max_staleness` (the mapping's, else
 * `defaults.max_staleness`). Sending a stale segment to a CRM is worse than sending nothing, and the block
 * is recorded where people look (a `blocked` run and an event), never skipped in silence.
 */

export type GateResult = { ok: true } | { ok: false; cause: 'stale model' | 'model build failed' | 'freshness unknown' | `monitor ${string}`; reason: string; details: Record<string, unknown> };

export async function checkGate(ctx: DaemonContext, mapping: Mapping): Promise<GateResult> {
  const settings = ctx.app.config.settings;
  const dependsOnModels = mapping.after?.includes(MODELS_JOB) ?? false;
  const maxStaleness = mapping.max_staleness ?? (dependsOnModels ? settings.defaults.max_staleness : undefined);
  if (!dependsOnModels && mapping.max_staleness === undefined) return { ok: true };

  if (dependsOnModels) {
    // A build running in this process finishes first, so the sync sees the new snapshot.
    const building = ctx.scheduler.current(MODELS_JOB);
    if (building) await building;
    if (ctx.lastBuild && !ctx.lastBuild.ok) {
      return { ok: false, cause: 'model build failed', reason: `the latest model build failed at ${ctx.lastBuild.at.toISOString()}: ${ctx.lastBuild.error ?? 'unknown error'}`, details: { build_at: ctx.lastBuild.at, error: ctx.lastBuild.error } };
    }
    // A data-quality monitor at critical (and not acknowledged) blocks what depends on the models.
    const blocking = await blockingMonitors(ctx.app);
    if (blocking.length) {
      const m = blocking[0]!;
      return { ok: false, cause: `monitor ${m.monitor}`, reason: `${m.detail} (since ${m.at.toISOString()}; acknowledge with: segsync monitors ack ${m.monitor} --reason "...")`, details: { monitors: blocking.map((b) => b.monitor), value: m.value, baseline: m.baseline, threshold: m.threshold } };
    }
  }

  let fresh;
  try {
    fresh = await modelsFreshness(ctx.app.warehouse.pool, settings, ctx.app.config.root, ctx.engine, mapping);
  } catch (err) {
    const message = err instanceof FreshnessError ? err.message : `freshness check failed: ${(err as Error).message}`;
    return { ok: false, cause: 'freshness unknown', reason: message, details: {} };
  }
  if (fresh.failed) return { ok: false, cause: 'model build failed', reason: fresh.failed, details: { source: fresh.source } };
  if (!fresh.at) return { ok: false, cause: 'stale model', reason: fresh.source === 'build' ? 'no models build has succeeded yet (freshness: build)' : `the model has no snapshot yet (source: ${fresh.source})`, details: { source: fresh.source } };
  const lagMs = Date.now() - fresh.at.getTime();
  modelFreshnessLag.set({ model: fresh.source === 'model' ? (mapping.source.model ?? mapping.name) : fresh.source }, Math.max(0, lagMs / 1000));
  if (maxStaleness !== undefined && lagMs > durationMs(maxStaleness)) {
    return {
      ok: false,
      cause: 'stale model',
      reason: `the model is ${formatMs(lagMs)} old (as of ${fresh.at.toISOString()}, source: ${fresh.source}), over max_staleness ${maxStaleness}`,
      details: { freshness_at: fresh.at, lag_ms: lagMs, max_staleness: maxStaleness, source: fresh.source },
    };
  }
  return { ok: true };
}
