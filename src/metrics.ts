import { pseudonym } from './audit/keys.ts';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * segsync's Prometheus metrics, in one registry any module can import. The daemon serves it on /metrics;
 * a one-shot CLI run fills it too, harmlessly. Destinations report their rate budget with
 * `setRateBudgetUsed`; the engine may report per-batch outcomes with `countRecords` and stage timings with
 * `observeStage` (the daemon otherwise derives them from each run's summary).
 */
export const registry = new Registry();

let defaultsOn = false;
/** Process metrics (CPU, memory, event loop lag), only for a long-lived process. */
export function enableProcessMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: registry, prefix: 'segsync_' });
}

export const runsTotal = new Counter({
  name: 'segsync_runs_total',
  help: 'Mapping runs by final status (succeeded, partial, failed, deferred, interrupted, blocked)',
  labelNames: ['mapping', 'status'] as const,
  registers: [registry],
});

export const recordsTotal = new Counter({
  name: 'segsync_records_total',
  help: 'Records by operation (create, update, remove; unchanged; "all" when the operation is not known) and outcome (delivered, failed, deferred, interrupted, dead, unchanged)',
  labelNames: ['mapping', 'destination', 'op', 'status'] as const,
  registers: [registry],
});

export const stageDuration = new Histogram({
  name: 'segsync_stage_duration_seconds',
  help: 'Duration of a stage: build (models), run (a whole mapping run), plan, deliver, reconcile',
  labelNames: ['stage', 'mapping'] as const,
  buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200],
  registers: [registry],
});

export const rateBudgetUsed = new Gauge({
  name: 'segsync_rate_budget_used_ratio',
  help: 'Share of a destination account\'s rate budget used in its current window (0..1), as reported by the destination',
  labelNames: ['destination', 'account', 'window'] as const,
  registers: [registry],
});

export const lastSuccess = new Gauge({
  name: 'segsync_last_success_timestamp_seconds',
  help: 'Unix time the mapping last finished a run with status succeeded',
  labelNames: ['mapping'] as const,
  registers: [registry],
});

export const modelFreshnessLag = new Gauge({
  name: 'segsync_model_freshness_lag_seconds',
  help: 'Age of the model data (now minus its freshness timestamp) when last checked',
  labelNames: ['model'] as const,
  registers: [registry],
});

export const skippedTicks = new Counter({
  name: 'segsync_skipped_ticks_total',
  help: 'Scheduled ticks that did not start a run: overlap (the previous run still going), replica (another replica holds the lock), stopping',
  labelNames: ['job', 'reason'] as const,
  registers: [registry],
});

export const slaBreaches = new Counter({
  name: 'segsync_sla_breaches_total',
  help: 'SLA breaches recorded as events, by mapping (or "models") and stage',
  labelNames: ['mapping', 'stage'] as const,
  registers: [registry],
});

export const reconciledTotal = new Counter({
  name: 'segsync_reconciled_records_total',
  help: 'Records read back by scheduled reconciliation, by verdict (verified, drifted, missing, unverifiable)',
  labelNames: ['mapping', 'status'] as const,
  registers: [registry],
});

export const runsInFlight = new Gauge({
  name: 'segsync_runs_in_flight',
  help: 'Runs (and model builds) executing in this process now',
  registers: [registry],
});

export function setRateBudgetUsed(destination: string, account: string, ratio: number, window = 'daily'): void {
  // The account is named by a keyed pseudonym: never a URL, a token or any hash of one (docs/security.md).
  rateBudgetUsed.set({ destination, account: pseudonym(account), window }, Math.max(0, ratio));
}

export function countRecords(mapping: string, destination: string, op: string, status: string, n: number): void {
  if (n > 0) recordsTotal.inc({ mapping, destination, op, status }, n);
}

export function observeStage(stage: string, mapping: string, seconds: number): void {
  stageDuration.observe({ stage, mapping }, seconds);
}
