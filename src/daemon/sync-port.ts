import type pg from 'pg';
import type { App } from '../app.ts';
import type { BuildOptions as ModelBuildOptions } from '../models/build.ts';
import type { RunOptions as EngineRunOptions, RunSummary as EngineRunSummary } from '../sync/run.ts';

/**
 * What the daemon needs from the sync engine and the models build, as one interface: the daemon's scheduler,
 * gates, HTTP server and shutdown are written (and can be exercised) against it, and the composition root
 * hands in the real implementation (sync-adapter.ts).
 */

export type { RunStatus } from '../sync/run.ts';

/** The run summary the daemon works with: the engine's counts and status, plus what the binding adds. */
export interface RunSummary extends Pick<EngineRunSummary, 'runId' | 'mapping' | 'status' | 'startedAt' | 'finishedAt' | 'error' | 'heldEarlier'> {
  counts: RunCounts;
  /** Receipts of the run by operation and outcome, when the engine reports them. */
  outcomes?: Array<{ op: string; status: string; n: number }>;
  /** Seconds per stage when the engine reports them (plan, deliver, reconcile). */
  stages?: Partial<Record<'plan' | 'deliver' | 'reconcile', number>>;
}

export type RunCounts = EngineRunSummary['counts'];

export type RunOptions = Pick<EngineRunOptions, 'signal' | 'forceSignal' | 'wait' | 'actor' | 'shared'>;

export type BuildOptions = Omit<ModelBuildOptions, 'onProgress'>;

export interface LastRun {
  runId: number;
  status: string;
  startedAt: Date;
  finishedAt: Date | null;
}

export interface SyncEngine {
  runMapping(app: App, name: string, opts: RunOptions): Promise<RunSummary>;
  buildModels(pool: pg.Pool, opts: BuildOptions): Promise<unknown>;
  modelFreshness(pool: pg.Pool, schema: string): Promise<Date | null>;
  /** Applies the state migrations (safe when replicas start together). */
  migrate(app: App): Promise<void>;
  /** Names of migrations not yet applied; empty when the schema is current. */
  pendingMigrations(app: App): Promise<string[]>;
  /** The latest run of a mapping, any status, from the runs table. */
  lastRun(app: App, mapping: string): Promise<LastRun | null>;
  /**
   * Marks runs left `running` by a process that is gone as `interrupted` and returns their mappings. Must
   * not touch runs another live replica is executing (their run lock is held).
   */
  markInterrupted(app: App): Promise<string[]>;
  /** Records a run that did not start because a gate held it (status `blocked`) and returns its id. */
  recordBlocked(app: App, mapping: string, reason: string): Promise<number | null>;
  /** true when the error means another process holds the mapping's run lock. */
  isLocked(err: unknown): boolean;
}
