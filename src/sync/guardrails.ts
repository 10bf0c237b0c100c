import type pg from 'pg';
import type { GuardrailRule, Guardrails, Mapping } from '../config/mapping.ts';
import { quoteIdent } from '../db/sql.ts';
import { maskPii } from '../log.ts';
import { itemFigures, type PastRun, type RunFigures } from '../state/guardrail-figures.ts';
import type { PlanCounts } from '../state/plan-items.ts';
import { sourceStatement, type SourceQuery } from './source.ts';

/**
 * Guardrails (docs/guardrails.md): each rule looks at the run's figures, computed in the plan's snapshot,
 * against thresholds and the mapping's delivered history, and says pass, warn or hold. A run with a hold
 * verdict is held: its plan stays in the ledger, nothing is sent, until someone approves or rejects it.
 */

export type Verdict = 'pass' | 'warn' | 'hold' | 'skip';

export interface RuleVerdict {
  rule: GuardrailRule;
  verdict: Verdict;
  /** What was measured, what it was held against, and what it was compared with. */
  value: number | null;
  threshold: number | null;
  baseline: number | null;
  detail: string;
  /** Allowed for this run by `run --allow <rule>` (a hold that was overridden). */
  allowed?: boolean;
}

/** The R/F/M columns whose raw cut-points are watched (the RFM models have them; other sources may not). */
const CUT_COLUMNS = ['recency_days', 'frequency', 'monetary'] as const;
const QUANTILES = [0.2, 0.4, 0.6, 0.8];

/**
 * The run's figures in the plan's snapshot: source population, segment counts and cut-points from the source
 * (one aggregate pass, plus one ordered-set aggregate per R/F/M column), removals and segment changes from
 * the planned items on every connection that planned a half.
 */
export async function runFigures(o: {
  client: pg.ClientBase; helper: pg.ClientBase | null; schema: string; mapping: Mapping; runId: number; source: SourceQuery; counts: PlanCounts; columns: string[];
}): Promise<RunFigures> {
  // Only a field mapped from the segment column carries segments: another first field could be an e-mail.
  const segMapped = o.mapping.fields.find((f) => f.from === 'rfm_segment') ?? null;
  const field = segMapped?.to ?? null;
  const segColumn = segMapped?.from ?? null;
  const halves = await Promise.all([o.client, ...(o.helper ? [o.helper] : [])].map((db) => itemFigures(db as pg.ClientBase, o.schema, o.runId, field)));
  // Segment shares and R/F/M cut-points from one pass over the source. From 20,000 records on, of a fixed
  // 1-in-16 sample by key hash (the same records every run): the figures are shares and quantiles, which a
  // 62k-record sample at 1M gives within a fraction of a percent, far inside the rules' floors, for a scan
  // of the model instead of a GROUP BY and a sort of it. The population itself is the plan's exact count.
  const present = CUT_COLUMNS.filter((c) => o.columns.includes(c));
  const segments: Record<string, number> = {};
  const cutPoints: Record<string, number[]> = {};
  if (segColumn !== null || present.length) {
    const sampled = o.counts.source >= 20_000;
    const cols = [...(segColumn !== null ? [`${quoteIdent(segColumn)}::text AS seg`] : [`NULL::text AS seg`]), ...present.map((c) => quoteIdent(c))];
    const cuts = present.map((c) => `(SELECT percentile_disc($1::float8[]) WITHIN GROUP (ORDER BY ${quoteIdent(c)}) FROM s) AS ${quoteIdent(c)}`);
    const { rows } = await o.client.query<Record<string, unknown>>(sourceStatement(
      `WITH s AS MATERIALIZED (SELECT ${cols.join(', ')} FROM ${o.source.at(1).from}${sampled ? ` WHERE (hashtext(${o.source.key}) & 15) = 0` : ''})
       SELECT $1::float8[] AS quantiles, (SELECT jsonb_object_agg(coalesce(seg, '(none)'), n) FROM (SELECT seg, count(*) AS n FROM s GROUP BY 1 LIMIT 1000) x) AS segments${cuts.length ? `, ${cuts.join(', ')}` : ''}`,
      [QUANTILES, ...o.source.params]));
    if (segColumn !== null) Object.assign(segments, (rows[0]?.segments as Record<string, number> | null) ?? {});
    for (const c of present) {
      const v = rows[0]?.[c] as Array<string | number> | null | undefined;
      if (v) cutPoints[c] = v.map(Number);
    }
  }
  return {
    population: o.counts.source,
    // Every delivered (not removed) record is unchanged, updated or removed by this plan: no count of the state.
    delivered: o.counts.unchanged + o.counts.update + o.counts.remove,
    removals: halves.reduce((a, h) => a + h.removals, 0),
    segmentChanges: halves.reduce((a, h) => a + h.segmentChanges, 0),
    segments,
    cutPoints,
  };
}

/**
 * Population stability index of two distributions of counts, over the buckets the baseline has: a segment that
 * appears from nothing has no share to compare with (a young shop's model grows segments as its history
 * does), so it is left out of the index and named by `newBuckets` instead; the other shares are renormalised
 * over the buckets compared. A small epsilon keeps a bucket that empties finite.
 */
export function psi(current: Record<string, number>, baseline: Record<string, number>): number {
  return psiDetail(current, baseline).value;
}

export function psiDetail(current: Record<string, number>, baseline: Record<string, number>): { value: number; newBuckets: string[] } {
  const keys = Object.keys(baseline).filter((k) => (baseline[k] ?? 0) > 0);
  const newBuckets = Object.keys(current).filter((k) => (current[k] ?? 0) > 0 && !((baseline[k] ?? 0) > 0));
  const total = (d: Record<string, number>) => keys.reduce((a, k) => a + (d[k] ?? 0), 0);
  const ct = total(current);
  const bt = total(baseline);
  if (ct === 0 || bt === 0) return { value: 0, newBuckets };
  let sum = 0;
  for (const k of keys) {
    const a = Math.max((current[k] ?? 0) / ct, 1e-4);
    const e = (baseline[k] ?? 0) / bt;
    sum += (a - e) * Math.log(a / e);
  }
  return { value: sum, newBuckets };
}

/** Median and median absolute deviation. */
function medianMad(xs: number[]): { median: number; mad: number } {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = (s: number[]) => (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2);
  const median = mid(sorted);
  return { median, mad: mid(xs.map((x) => Math.abs(x - median)).sort((a, b) => a - b)) };
}

/** The figures the anomaly rule watches, each with the absolute floor of its scale (a flat history still alarms). */
function watched(f: RunFigures): Array<{ name: string; value: number; floor: number; spikeOnly?: boolean }> {
  const out: Array<{ name: string; value: number; floor: number; spikeOnly?: boolean }> = [];
  const base = Math.max(f.delivered, 1);
  // Fewer changes or removals than usual send less: only a spike can do harm.
  out.push({ name: 'changed share', value: f.segmentChanges / base, floor: 0.02, spikeOnly: true });
  out.push({ name: 'removal share', value: f.removals / base, floor: 0.01, spikeOnly: true });
  const total = Object.values(f.segments).reduce((a, b) => a + b, 0) || 1;
  for (const [s, n] of Object.entries(f.segments)) out.push({ name: `share of ${s}`, value: n / total, floor: 0.02 });
  for (const [c, qs] of Object.entries(f.cutPoints)) {
    qs.forEach((v, i) => out.push({ name: `${c} p${QUANTILES[i]! * 100}`, value: v, floor: Math.max(1, Math.abs(v) * 0.05) }));
  }
  return out;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * Judges the run: every rule's verdict with its evidence. `history` is the mapping's delivered runs, newest
 * first; the current run and held runs are never part of it.
 */
export function evaluate(g: Guardrails, f: RunFigures, history: PastRun[], now: Date, allow: GuardrailRule[] = []): RuleVerdict[] {
  const off = new Set(g.disable);
  const out: RuleVerdict[] = [];
  const add = (v: RuleVerdict) => out.push(off.has(v.rule) ? { ...v, verdict: 'skip', detail: `disabled: ${v.detail}` } : allow.includes(v.rule) && v.verdict === 'hold' ? { ...v, allowed: true } : v);
  const last = history[0]?.figures ?? null;

  // Removals: against the delivered records.
  const share = f.delivered > 0 ? f.removals / f.delivered : 0;
  const overCount = g.removals.max_count !== undefined && f.removals > g.removals.max_count;
  add({
    rule: 'removals', value: f.removals, threshold: g.removals.max_count ?? g.removals.max_share, baseline: f.delivered,
    verdict: overCount || (f.removals >= g.removals.min_count && share > g.removals.max_share) ? 'hold' : 'pass',
    detail: `${f.removals} of ${f.delivered} delivered record(s) removed (${pct(share)}; hold above ${pct(g.removals.max_share)} from ${g.removals.min_count} removals${g.removals.max_count !== undefined ? `, or above ${g.removals.max_count}` : ''})`,
  });

  // Population: empty, under the minimum, or shrunk since the last delivered run.
  const drop = last && last.population > 0 ? (last.population - f.population) / last.population : 0;
  const empty = f.population === 0 && f.delivered > 0;
  add({
    rule: 'population', value: f.population, threshold: g.population.max_drop, baseline: last?.population ?? null,
    verdict: empty || (f.population < g.population.min && f.delivered > 0) || (drop > g.population.max_drop && last!.population - f.population >= g.population.min_drop_count) ? 'hold' : 'pass',
    detail: empty ? `the source is empty while ${f.delivered} record(s) are delivered`
      : f.population < g.population.min && f.delivered > 0 ? `${f.population} record(s) in the source, fewer than the minimum ${g.population.min}`
      : last ? `${f.population} record(s), ${drop > 0 ? `down ${pct(drop)}` : 'not down'} since run ${history[0]!.id} (${last.population}; hold above a ${pct(g.population.max_drop)} drop)`
      : `${f.population} record(s); no delivered run to compare with`,
  });

  // Segment changes: the transition matrix against the delivered state.
  const changed = f.delivered > 0 ? f.segmentChanges / f.delivered : 0;
  add({
    rule: 'changed', value: changed, threshold: g.changed.max_share, baseline: null,
    verdict: changed > g.changed.max_share && f.segmentChanges >= g.changed.min_count ? 'hold' : 'pass',
    detail: `${f.segmentChanges} of ${f.delivered} delivered record(s) change segment (${pct(changed)}; hold above ${pct(g.changed.max_share)} from ${g.changed.min_count} changes)`,
  });

  // Distribution shift of segment shares: PSI against the last delivered run.
  if (!last || Object.keys(f.segments).length === 0 || Math.min(f.population, last.population) < g.distribution.min_population) {
    add({ rule: 'distribution', value: null, threshold: g.distribution.hold, baseline: null, verdict: 'skip',
      detail: !last || Object.keys(f.segments).length === 0 ? 'no delivered run to compare segment shares with' : `fewer than ${g.distribution.min_population} records: shares too noisy to judge` });
  } else {
    const { value, newBuckets } = psiDetail(f.segments, last.segments);
    const total = Object.values(f.segments).reduce((a, b) => a + b, 0) || 1;
    const appeared = newBuckets.map((b) => `${b} (${pct((f.segments[b] ?? 0) / total)})`).join(', ');
    add({
      rule: 'distribution', value, threshold: g.distribution.hold, baseline: history[0]!.id,
      verdict: value > g.distribution.hold ? 'hold' : value > g.distribution.warn || newBuckets.length ? 'warn' : 'pass',
      detail: `segment shares moved by PSI ${value.toFixed(3)} since run ${history[0]!.id} (warn above ${g.distribution.warn}, hold above ${g.distribution.hold})${appeared ? `; new segment(s): ${appeared}` : ''}`,
    });
  }

  // Anomaly of per-run figures against the history: robust z-score with an absolute floor.
  let train = history.slice(0, g.anomaly.runs);
  if (g.anomaly.seasonality === 'weekday') {
    const same = train.filter((r) => new Date(r.startedAt).getUTCDay() === now.getUTCDay());
    if (same.length >= g.anomaly.min_runs) train = same;
  }
  if (f.delivered < g.anomaly.min_population) {
    add({ rule: 'anomaly', value: null, threshold: g.anomaly.z, baseline: null, verdict: 'skip', detail: `fewer than ${g.anomaly.min_population} delivered records: figures too noisy to judge` });
  } else if (train.length < g.anomaly.min_runs) {
    add({ rule: 'anomaly', value: null, threshold: g.anomaly.z, baseline: null, verdict: 'skip', detail: `${train.length} delivered run(s) to learn from, the rule waits for ${g.anomaly.min_runs}` });
  } else {
    const past = train.map((r) => new Map(watched(r.figures).map((w) => [w.name, w.value])));
    let worst: { name: string; value: number; median: number; z: number } | null = null;
    for (const w of watched(f)) {
      const xs = past.map((m) => m.get(w.name)).filter((x): x is number => x !== undefined);
      if (xs.length < g.anomaly.min_runs) continue;
      const { median, mad } = medianMad(xs);
      const z = (w.spikeOnly ? Math.max(0, w.value - median) : Math.abs(w.value - median)) / Math.max(1.4826 * mad, w.floor);
      if (!worst || z > worst.z) worst = { name: w.name, value: w.value, median, z };
    }
    add({
      rule: 'anomaly', value: worst?.z ?? 0, threshold: g.anomaly.z, baseline: worst?.median ?? null,
      verdict: worst && worst.z > g.anomaly.z ? 'hold' : 'pass',
      detail: worst ? `most unusual: ${worst.name} = ${round(worst.value)} against a median of ${round(worst.median)} over ${train.length} run(s) (robust z ${worst.z.toFixed(1)}; hold above ${g.anomaly.z})` : 'no figure to compare',
    });
  }
  return out;
}

const round = (x: number) => (Math.abs(x) < 1 ? Number(x.toFixed(4)) : Number(x.toFixed(2)));

/**
 * The verdicts that hold the run (not allowed, not disabled). A plan that sends nothing is never held: holding
 * protects the destination, and there is nothing to protect it from (the verdicts are still recorded).
 */
export function holding(verdicts: RuleVerdict[], changes: number): RuleVerdict[] {
  return changes === 0 ? [] : verdicts.filter((v) => v.verdict === 'hold' && !v.allowed);
}

/** Examples of moved keys for a hold's evidence, masked (keys can be e-mail addresses). */
export async function movedExamples(db: pg.ClientBase, schema: string, runId: number, field: string | null, limit = 5): Promise<Array<{ key: string; from: string; to: string }>> {
  const { rows } = await db.query<{ key: string; from: string; to: string }>(
    `SELECT key, coalesce(before ->> $2, '(new)') AS "from", coalesce(after ->> $2, '(removed)') AS "to" FROM ${schema}.run_items
     WHERE run_id = $1 AND (op = 'remove' OR ($2::text IS NOT NULL AND (before ->> $2) IS DISTINCT FROM (after ->> $2))) ORDER BY key LIMIT $3`,
    [runId, field, limit]);
  return rows.map((r) => ({ ...r, key: maskPii(r.key) }));
}

