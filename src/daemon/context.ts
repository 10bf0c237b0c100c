import type { App } from '../app.ts';
import type { SyncEngine } from './sync-port.ts';
import type { EventLog } from './events.ts';
import type { Scheduler } from './scheduler.ts';

/** What the daemon's jobs share. `app` is replaced on a successful reload; everything else lives as long as the process. */
export interface DaemonContext {
  app: App;
  engine: SyncEngine;
  events: EventLog;
  scheduler: Scheduler;
  /** Aborted on shutdown: runs stop after their current batch. */
  signal: AbortSignal;
  /** Per-process state destinations share across runs (rate budgets per account). */
  shared: Map<string, unknown>;
  /** Outcome of this process's latest model build. */
  lastBuild: { ok: boolean; at: Date; error?: string } | null;
  /** What /status shows per job. */
  status: Map<string, JobStatus>;
}

export interface JobStatus {
  /** disabled: not scheduled, e.g. its connection's credentials are missing (reason says which). */
  state: 'idle' | 'running' | 'blocked' | 'skipped' | 'held' | 'disabled';
  trigger?: string;
  since: Date;
  lastRun?: { runId: number | null; status: string; startedAt: Date; finishedAt: Date; error?: string };
  reason?: string;
}

export const MODELS_JOB = 'models';

export function setStatus(ctx: DaemonContext, job: string, patch: Partial<JobStatus> & Pick<JobStatus, 'state'>): void {
  const prev = ctx.status.get(job);
  const next: JobStatus = { ...prev, ...patch, since: new Date() };
  if (patch.state !== 'blocked' && patch.state !== 'disabled' && patch.reason === undefined) delete next.reason;
  ctx.status.set(job, next);
}
