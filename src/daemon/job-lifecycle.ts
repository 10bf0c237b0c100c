import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { runsInFlight, skippedTicks } from '../metrics.ts';
import { setStatus, type DaemonContext, type JobStatus } from './context.ts';
import type { EventInput } from './events.ts';
import type { Trigger } from './scheduler.ts';
import { watchStage, type Stage } from './sla.ts';

/**
 * The lifecycle every daemon job shares (mapping runs, model builds, read-backs), written once: /status says
 * running, the in-flight gauge counts it, the SLA watch records a breach while it runs; then either /status
 * holds the job's last run, or another replica was doing the work (skipped, quietly), or it failed (/status
 * says so and the failure is an event). What the job does with a result stays in the job.
 */
export interface JobSpec<T> {
  /** The /status entry: the mapping's name, `models`, `<mapping>:reconcile`. */
  job: string;
  trigger: Trigger;
  log: Logger;
  /** The stage whose time limit the whole job is watched against, and whose mapping a breach names. */
  sla: { stage: Stage; limitMs: number | undefined; mapping: string };
  /** true when the error means another replica holds the lock for this work: the tick is skipped. */
  lockedElsewhere?(err: unknown): boolean;
  /** The event a failure records; `message` is the error described for people. */
  failureEvent(message: string, err: unknown): EventInput;
  /** Called on failure before the event, with when it failed (the models job keeps its last build outcome). */
  onFailure?(message: string, finishedAt: Date): void;
  work(): Promise<T>;
  /** The job's last run for /status, from its result. */
  lastRun(result: T, startedAt: Date, finishedAt: Date): NonNullable<JobStatus['lastRun']>;
}

/** Runs the job through its lifecycle; the result when it finished, undefined when skipped or failed. */
export async function runJob<T>(ctx: DaemonContext, spec: JobSpec<T>): Promise<T | undefined> {
  const { job, trigger } = spec;
  const watch = watchStage(ctx.events, spec.sla);
  const startedAt = new Date();
  setStatus(ctx, job, { state: 'running', trigger });
  runsInFlight.inc();
  let result: T;
  try {
    result = await spec.work();
  } catch (err) {
    if (spec.lockedElsewhere?.(err)) {
      skippedTicks.inc({ job, reason: 'replica' });
      spec.log.info({ job, trigger }, 'running on another replica; this tick is skipped');
      setStatus(ctx, job, { state: 'skipped', reason: 'running on another replica', trigger });
      return undefined;
    }
    const message = describeError(err);
    const finishedAt = new Date();
    spec.onFailure?.(message, finishedAt);
    setStatus(ctx, job, { state: 'idle', trigger, lastRun: { runId: null, status: 'failed', startedAt, finishedAt, error: message } });
    await ctx.events.record(spec.failureEvent(message, err));
    return undefined;
  } finally {
    runsInFlight.dec();
    watch.stop();
  }
  setStatus(ctx, job, { state: 'idle', trigger, lastRun: spec.lastRun(result, startedAt, new Date()) });
  return result;
}
