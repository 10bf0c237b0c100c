import type pg from 'pg';
import { withTransaction } from '../db/transaction.ts';
import { LockedError, SegsyncError, UsageError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { carriedSnapshot, ensureBookkeeping, readState, recordSnapshots, saveFingerprints, staleSnapshots, tables, writeState, type ModelTables } from './bookkeeping.ts';
import { ensureCurrentView, rebuildHistory, refreshHistory, relationExists } from './materialize.ts';
import { profilePayments, type PaymentsProfile } from './fingerprint.ts';
import { checkPaymentsRelation, qualify, type Queryable } from './payments.ts';
import { planBuild } from './rebuild-scope.ts';
import { loadModelSources, renderBuild } from './template.ts';

/** Clock skew tolerated before an as-of counts as "in the future". */
const FUTURE_SLACK_MS = 60_000;

/** A build as of an instant before the last build's: it would move the models back and undo what came after. */
export class AsOfMovesBackError extends UsageError {
  readonly previous: Date;
  constructor(asOf: Date, previous: Date) {
    super(`as-of ${asOf.toISOString()} is before the last build's as-of ${previous.toISOString()}: the models would move back and every change after it would be undone (and delivered again by the next sync)`,
      `build as of ${previous.toISOString()} or later; --allow-earlier-as-of if you mean to go back`);
    this.previous = previous;
  }
}

export interface BuildOptions {
  /** Schema of the model tables and their bookkeeping (and of the payments relation when it is unqualified). */
  schema: string;
  /** Payments relation: `table` (in `schema`) or `schema.table`. */
  payments: string;
  /** The "current" instant; default now. */
  asOf?: Date;
  /** Recompute every snapshot even when the last build's history could be kept. */
  fullRefresh?: boolean;
  /** Build as of an instant after now (refused otherwise: the snapshots after today would be empty). */
  allowFutureAsOf?: boolean;
  /** Build as of an instant before the last build's (refused otherwise: it undoes the months after it). */
  allowEarlierAsOf?: boolean;
  log: Logger;
  onProgress?: (progress: BuildProgress) => void;
}

export interface BuildProgress {
  step: number;
  steps: number;
  phase: 'check' | 'fingerprint' | 'history' | 'current' | 'commit';
  label: string;
}

export interface BuildSummary {
  asOf: Date;
  mode: 'full' | 'incremental';
  /** Users in the current model (the latest snapshot). */
  users: number;
  /** Snapshot instants in the history after the build. */
  snapshots: number;
  /** Snapshot instants this build computed (all of them for a full build). */
  snapshotsRecomputed: number;
  /** Users per segment in the current model. */
  segments: Record<string, number>;
  durationMs: number;
  /** Things the user should know that did not stop the build (empty result, non-positive amounts). */
  warnings: string[];
  /** Why this build was full, or what made the incremental one recompute. */
  reason: string;
}

/** Memory per sort or hash step of a build (SEGSYNC_MODELS_WORK_MEM overrides, e.g. 256MB on a big server). */
const BUILD_WORK_MEM = /^\d+(kB|MB|GB)$/.test(process.env.SEGSYNC_MODELS_WORK_MEM ?? '') ? process.env.SEGSYNC_MODELS_WORK_MEM as string : '64MB';

const PHASES: ReadonlyArray<[BuildProgress['phase'], string]> = [
  ['check', 'checking the payments relation'],
  ['fingerprint', 'fingerprinting payments by month'],
  ['history', 'computing snapshots'],
  ['current', 'updating the current segments'],
  ['commit', 'committing'],
];

/**
 * Builds rfm_segments_hist and rfm_current_segments in `schema` from the model SQL in models/, in one
 * transaction: a failed build leaves the previous models and bookkeeping exactly as they were. Incremental
 * unless told otherwise (see plan.ts). Holds one client for the whole build and never uses the pool
 * meanwhile, so it runs on the one-connection embedded database too.
 */
export async function buildModels(pool: pg.Pool, opts: BuildOptions): Promise<BuildSummary> {
  const started = performance.now();
  const asOf = opts.asOf ?? new Date();
  if (Number.isNaN(asOf.getTime())) throw new SegsyncError('MODELS_AS_OF_INVALID', `the as-of instant is not a valid date (${String(opts.asOf)})`);
  // Time traps: an as-of in the future builds empty snapshots for the months to come; refused unless asked.
  if (asOf.getTime() > Date.now() + FUTURE_SLACK_MS && !opts.allowFutureAsOf) {
    throw new UsageError(`as-of ${asOf.toISOString()} is in the future: the snapshots after now would have no payments`, 'build as of now (no --as-of) or an earlier instant; --allow-future-as-of if you mean it');
  }
  const log = opts.log.child({ component: 'models', schema: opts.schema });
  const progress = (i: number) => {
    const [phase, label] = PHASES[i] ?? ['commit', ''];
    log.debug({ phase }, label);
    opts.onProgress?.({ step: i + 1, steps: PHASES.length, phase, label });
  };
  const sources = await loadModelSources();
  const t = tables(opts.schema);
  const payments = qualify(opts.payments, opts.schema);

  const result = await withTransaction(pool, async (client) => {
    const locked = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [`segsync:models:${opts.schema}`]);
    if (!locked.rows[0]?.ok) {
      throw new LockedError('MODELS_LOCKED', `another models build is running on schema ${opts.schema}`, { hint: 'wait for it to finish and run again', retryable: true });
    }
    // The build is a few large sorting statements: JIT compilation costs seconds there and never pays back,
    // and sorts of a snapshot's users should stay in memory rather than spill (both only for this transaction).
    await client.query(`SET LOCAL jit = off`);
    await client.query(`SET LOCAL work_mem = '${BUILD_WORK_MEM}'`);
    progress(0);
    const { paymentIdUnique } = await checkPaymentsRelation(client, payments);
    await ensureBookkeeping(client, t);
    const previous = await readState(client, t);
    if (previous && asOf.getTime() < previous.asOf.getTime() && !opts.allowEarlierAsOf) throw new AsOfMovesBackError(asOf, previous.asOf);
    const tablesPresent = (await relationExists(client, t.hist)) && (await relationExists(client, t.current));

    progress(1);
    const profile = await profilePayments(client, payments, asOf, {
      table: t.fingerprints,
      // the month start at or before the last build's as-of instant: payments up to it are "settled"
      settledUntil: previous && previous.payments === payments.display ? await monthStartOf(client, previous.asOf) : null,
    });
    log.debug({ reusedSettled: profile.reusedSettled }, 'payments fingerprinted');
    const warnings = warningsFor(profile, payments.display, asOf);
    for (const w of warnings) log.warn(w);

    const plan = await planBuild(client, t, { asOf, fullRefresh: opts.fullRefresh === true, previous, modelHash: sources.hash, payments: payments.display, tablesPresent });
    const relations = { payments: payments.sql, hist: t.hist, paymentIdUnique };

    progress(2);
    let recomputedFrom: Date | null | 'none';
    let reason: string;
    if (plan.mode === 'full') {
      log.info({ reason: plan.reason }, 'full build');
      const sql = renderBuild(sources, relations, asOf);
      const recreate = previous?.modelHash !== sources.hash;
      await rebuildHistory(client, t, sql.hist, recreate);
      await recordSnapshots(client, t, [], null, asOf);
      progress(3);
      await ensureCurrentView(client, t, sql.current, recreate);
      recomputedFrom = null;
      reason = plan.reason;
    } else if (plan.from) {
      log.info({ from: plan.from.toISOString(), why: plan.why }, 'incremental build');
      const carriedAt = await carriedSnapshot(client, t, plan.from);
      const sql = renderBuild(sources, relations, asOf, { from: plan.from, carriedAt });
      const stale = await staleSnapshots(client, t, plan.from, asOf);
      await refreshHistory(client, t, sql.hist, stale);
      await recordSnapshots(client, t, stale, plan.from, asOf);
      progress(3);
      await ensureCurrentView(client, t, sql.current, false);
      recomputedFrom = plan.from;
      reason = plan.why.join('; ');
    } else {
      log.info('nothing changed since the last build');
      progress(3);
      recomputedFrom = 'none';
      reason = 'nothing changed since the last build';
    }
    await saveFingerprints(client, t);
    await writeState(client, t, { asOf, modelHash: sources.hash, payments: payments.display }, plan.mode);
    const summary = await summarize(client, t, recomputedFrom);

    progress(4);
    return { asOf, mode: plan.mode, ...summary, warnings, reason };
  });
  const built: BuildSummary = { ...result, durationMs: Math.round(performance.now() - started) };
  log.info({ mode: built.mode, users: built.users, snapshots: built.snapshots, recomputed: built.snapshotsRecomputed, ms: built.durationMs }, 'models built');
  return built;
}

function warningsFor(profile: PaymentsProfile, relation: string, asOf: Date): string[] {
  const warnings: string[] = [];
  if (profile.rows === 0) {
    warnings.push(`payments relation ${relation} is empty: the models are empty`);
  } else if (profile.firstPaymentAsOf === null) {
    warnings.push(`as-of ${asOf.toISOString()} is before the first payment (${profile.firstPayment?.toISOString()}): the models are empty`);
  }
  if (profile.nonPositive > 0) {
    warnings.push(`${profile.nonPositive} payment(s) in ${relation} have payment_amount <= 0; they count as is (frequency, recency, and their amount in monetary): see docs/models.md`);
  }
  return warnings;
}

async function monthStartOf(db: Queryable, at: Date): Promise<Date | null> {
  const { rows } = await db.query<{ m: Date }>(`SELECT date_trunc('month', $1::timestamptz) AS m`, [at.toISOString()]);
  return rows[0]?.m ?? null;
}

async function summarize(db: Queryable, t: ModelTables, from: Date | null | 'none') {
  const counts = await db.query<{ snapshots: number; recomputed: number }>(
    `SELECT COUNT(*)::int AS snapshots, (COUNT(*) FILTER (WHERE $1::boolean OR snapshot_at >= $2::timestamptz))::int AS recomputed
       FROM ${t.snapshots}`,
    [from === null, from === null || from === 'none' ? 'infinity' : from.toISOString()]);
  const segs = await db.query<{ rfm_segment: string; users: number }>(
    `SELECT rfm_segment, COUNT(*)::int AS users FROM ${t.current} GROUP BY rfm_segment ORDER BY users DESC, rfm_segment`);
  const segments: Record<string, number> = {};
  let users = 0;
  for (const r of segs.rows) {
    segments[r.rfm_segment] = r.users;
    users += r.users;
  }
  return { users, snapshots: counts.rows[0]?.snapshots ?? 0, snapshotsRecomputed: counts.rows[0]?.recomputed ?? 0, segments };
}

/** The latest snapshot instant in the history (the as-of instant of the last build), or null when none. */
export async function modelFreshness(pool: pg.Pool, schema: string): Promise<Date | null> {
  const t = tables(schema);
  const { rows } = await pool.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [t.hist]);
  if (!rows[0]?.present) return null;
  const latest = await pool.query<{ at: Date | null }>(`SELECT MAX(snapshot_at) AS at FROM ${t.hist}`);
  return latest.rows[0]?.at ?? null;
}

/** When the last successful models build committed (its bookkeeping row), or null when none did. */
export async function modelBuiltAt(pool: pg.Pool, schema: string): Promise<Date | null> {
  const t = tables(schema);
  const { rows } = await pool.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [t.state]);
  if (!rows[0]?.present) return null;
  const r = await pool.query<{ at: Date | null }>(`SELECT max(built_at) AS at FROM ${t.state}`);
  return r.rows[0]?.at ?? null;
}
