import type pg from 'pg';
import type { App } from '../app.ts';
import type { Monitor } from '../config/settings.ts';
import { durationMs, formatMs } from '../daemon/duration.ts';
import { quoteIdent, quoteRelation } from '../db/sql.ts';
import { insertEvent } from '../state/events.ts';
import { latestMonitorResults, recordMonitorResults, type MonitorResult, type StoredMonitorResult } from '../state/monitor-results.ts';
import { psi } from './guardrails.ts';
import { ensureState } from './run.ts';

/**
 * Data-quality monitors on the warehouse (docs/monitors.md), the seed architecture's list: data latency,
 * completeness against a same-weekday baseline, and model anomalies. Each evaluation is stored; one at
 * critical blocks the mappings that wait for the models (a visible blocked run) until it recovers or is
 * acknowledged. Times are read at the models' as-of instant (the newest snapshot), so historical data sets
 * are judged as of their own "now".
 */

const QUANTILES = [0.2, 0.4, 0.6, 0.8];

function severityOf(value: number, warning: number, critical: number): MonitorResult['severity'] {
  return value >= critical ? 'critical' : value >= warning ? 'warning' : 'ok';
}

/** The models' as-of instant (newest snapshot), else now. */
async function asOf(pool: pg.Pool, modelsSchema: string): Promise<Date> {
  const hist = quoteRelation('rfm_segments_hist', modelsSchema);
  const { rows } = await pool.query<{ exists: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS exists`, [hist]);
  if (!rows[0]?.exists) return new Date();
  const r = await pool.query<{ at: Date | null }>(`SELECT max(snapshot_at) AS at FROM ${hist}`);
  return r.rows[0]?.at ?? new Date();
}

async function latency(pool: pg.Pool, payments: string, m: Extract<Monitor, { type: 'latency' }>, at: Date): Promise<MonitorResult> {
  const { rows } = await pool.query<{ newest: Date | null; p95: number | null }>(
    `SELECT max(payment_date) AS newest${m.loaded_at ? `, percentile_disc(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM ${quoteIdent(m.loaded_at)} - payment_date)) FILTER (WHERE payment_date >= $1::timestamptz - interval '7 days') AS p95` : ', NULL::float8 AS p95'}
     FROM ${payments} WHERE payment_date <= $1`, [at]);
  const warn = durationMs(m.warning);
  const crit = durationMs(m.critical);
  const newest = rows[0]?.newest ?? null;
  if (!newest) return { monitor: m.name, type: m.type, severity: 'critical', value: null, baseline: null, threshold: crit / 1000, detail: `no payment at or before ${at.toISOString()}` };
  const age = at.getTime() - newest.getTime();
  const arrival = rows[0]?.p95 == null ? null : rows[0].p95 * 1000;
  const worst = Math.max(age, arrival ?? 0);
  return {
    monitor: m.name, type: m.type, severity: worst >= crit ? 'critical' : worst >= warn ? 'warning' : 'ok', value: worst / 1000, baseline: null, threshold: (worst >= crit ? crit : warn) / 1000,
    detail: `newest payment ${formatMs(age)} old at ${at.toISOString()}${arrival === null ? '' : `; p95 arrival delay over the last 7 days ${formatMs(arrival)}`} (warning ${m.warning}, critical ${m.critical})`,
    evidence: { newest_payment: newest, as_of: at, ...(arrival === null ? {} : { arrival_p95_ms: arrival }) },
  };
}

async function completeness(pool: pg.Pool, payments: string, m: Extract<Monitor, { type: 'completeness' }>, at: Date): Promise<MonitorResult> {
  const dim = m.dimension ? `${quoteIdent(m.dimension)}::text` : `'all'`;
  // Days are UTC calendar days; the last `days` complete days before the as-of instant, each against the
  // median of the same weekday in the `baseline_weeks` weeks before it (per dimension value).
  const { rows } = await pool.query<{ d: Date; dim: string; n: number; baseline: number | null }>(
    `WITH days AS (SELECT generate_series(date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC') - make_interval(days => $2::int), date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC') - interval '1 day', interval '1 day') AS d),
          counts AS (
            SELECT date_trunc('day', payment_date AT TIME ZONE 'UTC') AS d, ${dim} AS dim, count(*)::int AS n FROM ${payments}
            WHERE payment_date >= $1::timestamptz - make_interval(days => $2::int + 7 * $3::int + 1) AND payment_date < date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
            GROUP BY 1, 2),
          dims AS (SELECT DISTINCT dim FROM counts)
     SELECT days.d, dims.dim, coalesce(c.n, 0) AS n,
            (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(b.n, 0)) FROM generate_series(1, $3::int) w
               LEFT JOIN counts b ON b.dim = dims.dim AND b.d = days.d - make_interval(days => 7 * w)) AS baseline
     FROM days CROSS JOIN dims LEFT JOIN counts c ON c.d = days.d AND c.dim = dims.dim`,
    [at, m.days, m.baseline_weeks]);
  let worst: { d: Date; dim: string; n: number; baseline: number; drop: number } | null = null;
  for (const r of rows) {
    if (!r.baseline || r.baseline <= 0) continue;
    const drop = Math.max(0, 1 - r.n / r.baseline);
    if (!worst || drop > worst.drop) worst = { d: r.d, dim: r.dim, n: r.n, baseline: r.baseline, drop };
  }
  if (!worst) {
    // No payment at all in the days checked and their baselines: an emptied table is the worst incompleteness.
    if (rows.length === 0) return { monitor: m.name, type: m.type, severity: 'critical', value: 0, baseline: null, threshold: m.critical, detail: `no payment in the ${m.days} day(s) before ${at.toISOString()} nor in the ${m.baseline_weeks} weeks before them` };
    return { monitor: m.name, type: m.type, severity: 'ok', value: null, baseline: null, threshold: m.warning, detail: `no baseline: fewer than ${m.baseline_weeks} weeks of payments before ${at.toISOString()}` };
  }
  const sev = severityOf(worst.drop, m.warning, m.critical);
  return {
    monitor: m.name, type: m.type, severity: sev, value: worst.n, baseline: worst.baseline, threshold: sev === 'critical' ? m.critical : m.warning,
    detail: `${worst.n} payment(s) on ${worst.d.toISOString().slice(0, 10)}${m.dimension ? ` for ${m.dimension} ${worst.dim}` : ''}, ${Math.round(worst.drop * 100)}% below the median ${worst.baseline} of the same weekday over ${m.baseline_weeks} weeks (warning ${Math.round(m.warning * 100)}%, critical ${Math.round(m.critical * 100)}%)`,
    evidence: { day: worst.d, dimension: worst.dim, drop: worst.drop },
  };
}

async function model(pool: pg.Pool, modelsSchema: string, m: Extract<Monitor, { type: 'model' }>): Promise<MonitorResult> {
  const hist = quoteRelation('rfm_segments_hist', modelsSchema);
  const snaps = (await pool.query<{ s: Date }>(`SELECT DISTINCT snapshot_at AS s FROM ${hist} ORDER BY 1 DESC LIMIT 2`)).rows.map((r) => r.s);
  if (snaps.length === 0) return { monitor: m.name, type: m.type, severity: 'critical', value: null, baseline: null, threshold: m.critical, detail: 'the model has no snapshot' };
  const shape = async (s: Date) => {
    const seg = await pool.query<{ seg: string; n: number; f: number; mon: number }>(
      `SELECT rfm_segment AS seg, count(*)::int AS n, sum(frequency)::float8 AS f, sum(monetary)::float8 AS mon FROM ${hist} WHERE snapshot_at = $1 GROUP BY 1`, [s]);
    const cuts = await pool.query<{ r: number[]; f: number[]; m: number[] }>(
      `SELECT percentile_disc($2::float8[]) WITHIN GROUP (ORDER BY recency_days) AS r, percentile_disc($2::float8[]) WITHIN GROUP (ORDER BY frequency) AS f,
              percentile_disc($2::float8[]) WITHIN GROUP (ORDER BY monetary) AS m FROM ${hist} WHERE snapshot_at = $1`, [s, QUANTILES]);
    return { segments: seg.rows, cuts: cuts.rows[0]! };
  };
  const now = await shape(snaps[0]!);
  const total = now.segments.reduce((a, r) => a + r.n, 0);
  const zeroed = now.segments.filter((r) => total > 0 && r.n / total >= m.large_segment && (r.f === 0 || r.mon === 0)).map((r) => r.seg);
  if (zeroed.length) {
    return { monitor: m.name, type: m.type, severity: 'critical', value: zeroed.length, baseline: null, threshold: m.large_segment,
      detail: `frequency or monetary sums to zero in large segment(s): ${zeroed.join(', ')} (snapshot ${snaps[0]!.toISOString()})`, evidence: { zeroed } };
  }
  if (snaps.length < 2) return { monitor: m.name, type: m.type, severity: 'ok', value: null, baseline: null, threshold: m.warning, detail: 'one snapshot: nothing to compare with yet' };
  const before = await shape(snaps[1]!);
  const value = psi(Object.fromEntries(now.segments.map((r) => [r.seg, r.n])), Object.fromEntries(before.segments.map((r) => [r.seg, r.n])));
  const moved: string[] = [];
  for (const [k, label] of [['r', 'recency_days'], ['f', 'frequency'], ['m', 'monetary']] as const) {
    (now.cuts[k] ?? []).forEach((v, i) => {
      const b = Number(before.cuts[k]?.[i]);
      if (b !== 0 && Math.abs(Number(v) - b) / Math.abs(b) > m.cut_point_change) moved.push(`${label} p${QUANTILES[i]! * 100} ${b} -> ${v}`);
    });
  }
  let sev = severityOf(value, m.warning, m.critical);
  if (sev === 'ok' && moved.length) sev = 'warning';
  return {
    monitor: m.name, type: m.type, severity: sev, value, baseline: null, threshold: sev === 'critical' ? m.critical : m.warning,
    detail: `segment shares moved by PSI ${value.toFixed(3)} from ${snaps[1]!.toISOString().slice(0, 10)} to ${snaps[0]!.toISOString().slice(0, 10)}${moved.length ? `; cut-points moved: ${moved.join(', ')}` : ''}`,
    evidence: { cut_points: now.cuts, before: before.cuts },
  };
}

/**
 * Evaluates every configured monitor, stores the results (an acknowledgement carries over while the monitor
 * stays critical), and raises an event for each one that turned warning or critical. Returns the results.
 */
export async function runMonitors(app: App, opts: { only?: string } = {}): Promise<StoredMonitorResult[]> {
  await ensureState(app);
  const { settings } = app.config;
  const pool = app.warehouse.pool;
  const schema = quoteIdent(settings.state.schema);
  const monitors = settings.monitors.filter((m) => !opts.only || m.name === opts.only);
  if (!monitors.length) return [];
  const at = await asOf(pool, settings.models.schema);
  const payments = quoteRelation(settings.models.payments, settings.models.schema);
  const before = new Map((await latestMonitorResults(pool, schema)).map((r) => [r.monitor, r]));
  const results: MonitorResult[] = [];
  for (const m of monitors) {
    try {
      results.push(m.type === 'latency' ? await latency(pool, payments, m, at) : m.type === 'completeness' ? await completeness(pool, payments, m, at) : await model(pool, settings.models.schema, m));
    } catch (err) {
      results.push({ monitor: m.name, type: m.type, severity: 'critical', value: null, baseline: null, threshold: null, detail: `the monitor could not be evaluated: ${(err as Error).message.slice(0, 300)}` });
    }
  }
  await recordMonitorResults(pool, schema, results, before);
  for (const r of results) {
    const prev = before.get(r.monitor);
    if (r.severity !== 'ok' && prev?.severity !== r.severity) {
      await insertEvent(pool, schema, { kind: 'monitor', severity: r.severity === 'critical' ? 'critical' : 'warning', message: `monitor ${r.monitor} is ${r.severity}: ${r.detail}`, details: { monitor: r.monitor, value: r.value, baseline: r.baseline, threshold: r.threshold }, dedupKey: `monitor:${r.monitor}` });
    } else if (r.severity === 'ok' && prev && prev.severity !== 'ok') {
      await insertEvent(pool, schema, { kind: 'monitor_recovered', severity: 'info', message: `monitor ${r.monitor} recovered: ${r.detail}`, details: { monitor: r.monitor }, dedupKey: `monitor:${r.monitor}` });
    }
  }
  return (await latestMonitorResults(pool, schema)).filter((r) => monitors.some((m) => m.name === r.monitor));
}

/** The monitors at critical and not acknowledged: each blocks the mappings that wait for the models. */
export async function blockingMonitors(app: App): Promise<StoredMonitorResult[]> {
  if (!app.config.settings.monitors.length) return [];
  const names = new Set(app.config.settings.monitors.map((m) => m.name));
  return (await latestMonitorResults(app.warehouse.pool, quoteIdent(app.config.settings.state.schema)))
    .filter((r) => names.has(r.monitor) && r.severity === 'critical' && !r.ackedAt);
}

