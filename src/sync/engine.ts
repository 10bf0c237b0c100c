import { hostname } from 'node:os';
import type pg from 'pg';
import type { App } from '../app.ts';
import { withTransaction } from '../db/transaction.ts';
import { BudgetExhaustedError } from '../errors.ts';
import { acquireRunLock } from '../state/locks.ts';
import { migrate } from '../state/migrate.ts';
import { getMapping, openDestination } from './connect.ts';
import { closeUnsent } from './ledger.ts';
import { deliverPlanned } from './deliver.ts';
import { checkKeys, dropUnplannedItems, enterPlanSnapshot, planDetail, planInto, snapshotRelation, withPlanHelper, type PlanCounts, type PlanDetail } from './plan.ts';
import { checkSource, sourceQuery, sourceStatement } from './source.ts';

export type RunStatus = 'succeeded' | 'partial' | 'failed' | 'deferred' | 'interrupted' | 'blocked';

export interface RunSummary {
  runId: number;
  mapping: string;
  status: RunStatus;
  planned: PlanCounts;
  counts: { create: number; update: number; remove: number; unchanged: number; delivered: number; failed: number; deferred: number; dead: number };
  startedAt: Date;
  finishedAt: Date;
  error?: string;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Wait for another runner of the same mapping to finish instead of failing with LOCKED. */
  wait?: boolean;
  trigger?: string;
  onPlanned?: (planned: PlanCounts) => void;
  onProgress?: (p: { done: number; total: number }) => void;
  /** Process-wide objects shared by destinations (rate budgets). */
  shared?: Map<string, unknown>;
  /** Only records whose last delivery failed (segsync retry). */
  failedOnly?: boolean;
}

const sharedDefault = new Map<string, unknown>();

/** Clears the dead mark of a mapping's records so the next run sends them again; returns how many. */
export async function reviveDead(app: App, name: string): Promise<number> {
  await ensureState(app);
  const { rowCount } = await app.warehouse.pool.query(
    `UPDATE ${app.config.settings.state.schema}.delivered SET dead_at = NULL, fail_count = 0 WHERE mapping = $1 AND dead_at IS NOT NULL`,
    [getMapping(app.config, name).value.name]);
  return rowCount ?? 0;
}

/**
 * Marks the mapping's runs still 'planning' or 'running' as interrupted: with the mapping's run lock held, any
 * such run was left by a process that died. Returns how many. The half-written intent of a run that never
 * became 'running' goes with it (dropUnplannedItems).
 */
export async function closeAbandonedRuns(pool: Pick<pg.Pool, 'query'>, schema: string, mapping: string): Promise<number> {
  const { rowCount } = await pool.query(
    `UPDATE ${schema}.runs SET status = 'interrupted', finished_at = now(), error = coalesce(error, 'the process running it stopped before it finished')
     WHERE mapping = $1 AND status IN ('planning', 'running')`, [mapping]);
  await dropUnplannedItems(pool, schema, mapping);
  return rowCount ?? 0;
}

/** Makes sure the state schema exists and is current. Cheap when it is. */
export async function ensureState(app: App): Promise<void> {
  await migrate(app.warehouse.pool, app.config.settings.state.schema);
}

/**
 * Runs one mapping: lock, plan in SQL (the intent is written before anything is sent), deliver in batches,
 * record receipts and advance the delivered state per confirmed batch, finish the run row. Never throws for
 * destination failures: they are in the summary and the receipts. Throws for what prevents a run at all
 * (config, lock held, source unreadable, duplicate keys) after recording the run as failed where one exists.
 */
export async function runMapping(app: App, name: string, opts: RunOptions = {}): Promise<RunSummary> {
  const file = getMapping(app.config, name);
  const mapping = file.value;
  const schema = app.config.settings.state.schema;
  const pool = app.warehouse.pool;
  const signal = opts.signal ?? new AbortController().signal;
  // The lock first: whoever asks first runs first (the in-process lock is taken before any await).
  const lock = await acquireRunLock(app.warehouse, mapping.name, { wait: opts.wait ?? false });
  const startedAt = new Date();
  let runId = 0;
  try {
    await ensureState(app);
    await closeAbandonedRuns(pool, schema, mapping.name);
    const columns = await checkSource(pool, file, app.config.settings.models.schema);
    const hasSnapshot = columns.some((c) => c.name === 'snapshot_at');
    const q = sourceQuery(mapping, app.config.settings.models.schema);
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO ${schema}.runs (mapping, trigger, status, config_hash, destination, host, pid) VALUES ($1, $2, 'planning', $3, $4, $5, $6) RETURNING id`,
      [mapping.name, opts.trigger ?? 'cli', app.config.hash, mapping.destination.connection, hostname(), process.pid]);
    runId = Number(rows[0]!.id);
    const log = app.log.child({ mapping: mapping.name, run: runId });

    const dest = await openDestination(app.config, file, { log: app.log, shared: opts.shared ?? sharedDefault, runId, state: { db: pool, schema } });
    try {
      // A model table or view is planned in one snapshot (the key check, the diff, both halves of it on a
      // server, and the counts all see the same model), taken after a models build in progress has committed.
      const relation = await snapshotRelation(pool, q);
      const planned = await withTransaction(pool, async (client) => {
        await enterPlanSnapshot(client, relation);
        await checkKeys(client, mapping, q);
        const counts = await withPlanHelper(app.warehouse.embedded ? null : pool, relation, client, true,
          (helper) => planInto(client, { schema, mapping, runId, source: q, failedOnly: opts.failedOnly ?? false, helper }));
        // The model snapshot this run delivers, so a receipt can be traced to the exact model state.
        const snapshotAt = hasSnapshot ? (await client.query<{ s: Date | null }>(sourceStatement(`SELECT max(snapshot_at) AS s FROM ${q.from}`, q.params))).rows[0]?.s ?? null : null;
        await client.query(`UPDATE ${schema}.runs SET status = 'running', planned = $2, planned_at = clock_timestamp(), snapshot_at = $3 WHERE id = $1`,
          [runId, JSON.stringify(counts), snapshotAt]);
        return counts;
      });
      opts.onPlanned?.(planned);
      const total = planned.create + planned.update + planned.remove;
      log.info({ ...planned }, 'planned');
      if (total > 0) {
        // Checked after planning, so that a budget already spent today defers the whole plan (visible in
        // receipts, sent next time) instead of failing the run.
        try {
          await dest.session.check();
        } catch (err) {
          if (!(err instanceof BudgetExhaustedError)) throw err;
          const deferred = await closeUnsent(pool, schema, mapping.name, runId, 'deferred', err.message);
          return await finish(app, runId, mapping.name, 'deferred', planned, { delivered: 0, failed: 0, deferred }, startedAt, err.message);
        }
      }
      const limits = dest.session.limits;
      const result = await deliverPlanned({
        pool, schema, mapping: mapping.name, runId, session: dest.session, signal, log,
        batchSize: Math.min(mapping.batch_size ?? limits.defaultBatchSize ?? limits.maxBatchSize, limits.maxBatchSize),
        concurrency: Math.min(mapping.concurrency ?? limits.defaultConcurrency, limits.maxConcurrency),
        deadAfter: mapping.dead_after ?? app.config.settings.defaults.dead_after,
        copy: !app.warehouse.embedded,
        onProgress: (done) => opts.onProgress?.({ done, total }),
      });
      const leftover = result.stoppedBy === 'abort' ? 'interrupted' : 'deferred';
      const deferred = await closeUnsent(pool, schema, mapping.name, runId, leftover, result.stopReason ?? 'not sent');
      const status: RunStatus = result.stoppedBy === 'abort' ? 'interrupted'
        : result.stoppedBy === 'budget' ? 'deferred'
        : result.failed === 0 && result.stoppedBy === null ? 'succeeded'
        : result.delivered > 0 ? 'partial' : total === 0 ? 'succeeded' : 'failed';
      return await finish(app, runId, mapping.name, status, planned, { delivered: result.delivered, failed: result.failed, deferred }, startedAt, result.stopReason ?? undefined);
    } finally {
      await dest.session.close().catch((err: unknown) => app.log.warn({ err: (err as Error).message }, 'closing the destination failed'));
    }
  } catch (err) {
    if (runId) {
      await pool.query(`UPDATE ${schema}.runs SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1 AND status IN ('planning', 'running')`,
        [runId, err instanceof Error ? err.message.slice(0, 2000) : String(err)]).catch(() => {});
      await dropUnplannedItems(pool, schema, mapping.name).catch(() => {});
    }
    throw err;
  } finally {
    await lock.release();
  }
}

async function finish(app: App, runId: number, mapping: string, status: RunStatus, planned: PlanCounts, outcome: { delivered: number; failed: number; deferred: number }, startedAt: Date, error?: string): Promise<RunSummary> {
  const schema = app.config.settings.state.schema;
  const { rows } = await app.warehouse.pool.query<{ finished_at: Date }>(
    `UPDATE ${schema}.runs SET status = $2, outcome = $3, finished_at = now(), error = $4 WHERE id = $1 RETURNING finished_at`,
    [runId, status, JSON.stringify(outcome), error ?? null]);
  return {
    runId, mapping, status, planned,
    counts: { create: planned.create, update: planned.update, remove: planned.remove, unchanged: planned.unchanged, dead: planned.dead, ...outcome },
    startedAt, finishedAt: rows[0]!.finished_at, ...(error ? { error } : {}),
  };
}

export interface PlanSummary {
  mapping: string;
  counts: PlanCounts;
  detail: PlanDetail;
  destinationProblems: string[];
}

/**
 * A dry run: the same SQL plan as a run, inside a transaction that is rolled back, so nothing is written
 * and nothing is sent. With `checkDestination`, the mapping is also checked against the destination schema.
 */
export async function planMapping(app: App, name: string, opts: { checkDestination?: boolean; samples?: number } = {}): Promise<PlanSummary> {
  const file = getMapping(app.config, name);
  const mapping = file.value;
  const schema = app.config.settings.state.schema;
  await ensureState(app);
  await checkSource(app.warehouse.pool, file, app.config.settings.models.schema);
  const q = sourceQuery(mapping, app.config.settings.models.schema);
  let destinationProblems: string[] = [];
  if (opts.checkDestination) {
    const dest = await openDestination(app.config, file, { log: app.log, shared: sharedDefault });
    try {
      destinationProblems = await dest.session.validateMapping();
    } finally {
      await dest.session.close().catch(() => {});
    }
  }
  // The same plan as a run (in two halves on a server), every write rolled back on both connections.
  const relation = await snapshotRelation(app.warehouse.pool, q);
  return withTransaction(app.warehouse.pool, async (client) => {
    await enterPlanSnapshot(client, relation);
    await checkKeys(client, mapping, q);
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO ${schema}.runs (mapping, trigger, status, config_hash, destination) VALUES ($1, 'plan', 'planning', $2, $3) RETURNING id`,
      [mapping.name, app.config.hash, mapping.destination.connection]);
    const runId = Number(rows[0]!.id);
    return withPlanHelper(app.warehouse.embedded ? null : app.warehouse.pool, relation, client, false, async (helper) => {
      const counts = await planInto(client, { schema, mapping, runId, source: q, helper });
      const detail = await planDetail(client, schema, mapping, runId, opts.samples ?? 3, helper);
      return { mapping: mapping.name, counts, detail, destinationProblems };
    });
  }, { commit: false });
}

