import type { App } from '../app.ts';
import { LockedError } from '../errors.ts';
import { buildModels, modelFreshness } from '../models/index.ts';
import { acquireRunLock } from '../state/locks.ts';
import { migrate, pendingMigrations } from '../state/migrate.ts';
import { closeAbandonedRuns, runMapping } from '../sync/engine.ts';
import type { LastRun, RunSummary, SyncEngine } from './sync-port.ts';
import { quoteIdent } from '../db/sql.ts';

/**
 * The real engine behind the daemon's SyncEngine interface: the sync engine (src/sync), the state
 * migrations and run locks (src/state), and the models build (src/models).
 */

export const syncEngine: SyncEngine = {
  async runMapping(app, name, opts): Promise<RunSummary> {
    const summary = await runMapping(app, name, opts);
    // Stage timings come from the run row: planned_at splits planning from delivery.
    const schema = quoteIdent(app.config.settings.state.schema);
    const { rows } = await app.warehouse.pool.query<{ plan: number | null; deliver: number | null }>(
      `SELECT extract(epoch FROM planned_at - started_at)::float8 AS plan, extract(epoch FROM finished_at - planned_at)::float8 AS deliver
         FROM ${schema}.runs WHERE id = $1`, [summary.runId]);
    const stages: RunSummary['stages'] = {};
    if (rows[0]?.plan != null) stages.plan = rows[0].plan;
    if (rows[0]?.deliver != null) stages.deliver = rows[0].deliver;
    // Per-op outcomes from the receipts (one per record and run: their key is (run_id, key)).
    const outcomes = await app.warehouse.pool.query<{ op: string; status: string; n: number }>(
      `SELECT op, status, count(*)::int AS n FROM ${schema}.receipts WHERE run_id = $1 GROUP BY op, status`, [summary.runId]);
    return { ...summary, stages, outcomes: outcomes.rows };
  },

  buildModels: (pool, opts) => buildModels(pool, opts),
  modelFreshness: (pool, schema) => modelFreshness(pool, schema),

  async migrate(app) {
    await migrate(app.warehouse.pool, app.config.settings.state.schema);
  },

  pendingMigrations: (app) => pendingMigrations(app.warehouse.pool, quoteIdent(app.config.settings.state.schema)),

  async lastRun(app, mapping): Promise<LastRun | null> {
    const { rows } = await app.warehouse.pool.query<{ id: string; status: string; started_at: Date; finished_at: Date | null }>(
      `SELECT id, status, started_at, finished_at FROM ${quoteIdent(app.config.settings.state.schema)}.runs
        WHERE mapping = $1 AND trigger <> 'plan' ORDER BY started_at DESC LIMIT 1`, [mapping]);
    const r = rows[0];
    return r ? { runId: Number(r.id), status: r.status, startedAt: r.started_at, finishedAt: r.finished_at } : null;
  },

  async markInterrupted(app) {
    const schema = quoteIdent(app.config.settings.state.schema);
    const { rows } = await app.warehouse.pool.query<{ mapping: string }>(`SELECT DISTINCT mapping FROM ${schema}.runs WHERE status IN ('planning', 'running')`);
    const marked: string[] = [];
    for (const { mapping } of rows) {
      // Holding the run lock proves no live process (another replica included) is executing that run.
      let lock;
      try {
        lock = await acquireRunLock(app.warehouse, mapping, { wait: false });
      } catch (err) {
        if (err instanceof LockedError) continue;
        throw err;
      }
      try {
        if (await closeAbandonedRuns(app.warehouse.pool, schema, mapping)) marked.push(mapping);
      } finally {
        await lock.release();
      }
    }
    return marked;
  },

  async recordBlocked(app, mapping, reason) {
    const m = app.config.mappings.find((x) => x.value.name === mapping)?.value;
    const { rows } = await app.warehouse.pool.query<{ id: string }>(
      `INSERT INTO ${quoteIdent(app.config.settings.state.schema)}.runs (mapping, trigger, status, config_hash, destination, error, finished_at)
       VALUES ($1, 'daemon', 'blocked', $2, $3, $4, now()) RETURNING id`,
      [mapping, app.config.hash, m?.destination.connection ?? '', reason]);
    return Number(rows[0]!.id);
  },

  isLocked: (err) => err instanceof LockedError,
};
