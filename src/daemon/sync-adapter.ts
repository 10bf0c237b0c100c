import type { App } from '../app.ts';
import { LockedError } from '../errors.ts';
import { buildModels, modelFreshness } from '../models/index.ts';
import { auditConfig } from '../audit/config-audit.ts';
import { daemonActor } from '../state/actor.ts';
import { closeAbandonedRuns } from '../state/close-abandoned.ts';
import { createRun } from '../state/create-run.ts';
import { lastRun, mappingsWithOpenRuns } from '../state/list-runs.ts';
import { acquireRunLock } from '../state/locks.ts';
import { migrate, pendingMigrations } from '../state/migrate.ts';
import { runReport } from '../state/run-report.ts';
import { runMapping } from '../sync/run.ts';
import type { LastRun, RunSummary, SyncEngine } from './sync-port.ts';
import { quoteIdent } from '../db/sql.ts';

/**
 * The real engine behind the daemon's SyncEngine interface: the sync engine (src/sync), the state
 * operations (src/state), and the models build (src/models).
 */

export const syncEngine: SyncEngine = {
  async runMapping(app, name, opts): Promise<RunSummary> {
    const summary = await runMapping(app, name, opts);
    const report = await runReport(app.warehouse.pool, quoteIdent(app.config.settings.state.schema), summary.runId);
    return { ...summary, stages: report.stages, outcomes: report.outcomes };
  },

  buildModels: (pool, opts) => buildModels(pool, opts),
  modelFreshness: (pool, schema) => modelFreshness(pool, schema),

  async migrate(app) {
    await migrate(app.warehouse.pool, app.config.settings.state.schema);
    await auditConfig(app.warehouse.pool, app.config.settings.state.schema, app.config, daemonActor('start'), 'config.loaded');
  },

  pendingMigrations: (app) => pendingMigrations(app.warehouse.pool, quoteIdent(app.config.settings.state.schema)),

  lastRun: (app, mapping): Promise<LastRun | null> => lastRun(app.warehouse.pool, quoteIdent(app.config.settings.state.schema), mapping),

  async markInterrupted(app) {
    const schema = quoteIdent(app.config.settings.state.schema);
    const marked: string[] = [];
    for (const mapping of await mappingsWithOpenRuns(app.warehouse.pool, schema)) {
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
    return createRun(app.warehouse.pool, quoteIdent(app.config.settings.state.schema), {
      mapping, actor: daemonActor('schedule'), configHash: app.config.hash, destination: m?.destination.connection ?? '', status: 'blocked', error: reason,
    });
  },

  isLocked: (err) => err instanceof LockedError,
};
