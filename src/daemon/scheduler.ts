import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../log.ts';
import { skippedTicks } from '../metrics.ts';

/**
 * Fires jobs on their cron schedules and never runs one job twice at once: a tick that finds the job still
 * running is skipped, logged and counted (segsync_skipped_ticks_total{reason="overlap"}), never queued, so
 * a slow destination cannot pile up runs. Jobs without a schedule only run when fired (catch-up, after a
 * model build).
 */

export type Trigger = 'schedule' | 'catch-up' | 'after-models' | 'manual';

export interface Job {
  name: string;
  schedule?: string | undefined;
  run(trigger: Trigger): Promise<void>;
}

interface Entry {
  job: Job;
  task: ScheduledTask | null;
}

export class Scheduler {
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #timezone: string;
  readonly #log: Logger;
  #stopped = false;

  constructor(opts: { timezone: string; log: Logger }) {
    this.#timezone = opts.timezone;
    this.#log = opts.log;
  }

  /** Makes the job set exactly `jobs`: removed jobs stop ticking, changed schedules are replaced, new ones start. */
  set(jobs: Job[]): void {
    const wanted = new Map(jobs.map((j) => [j.name, j]));
    for (const [name, entry] of this.#entries) {
      if (!wanted.has(name)) {
        void entry.task?.destroy();
        this.#entries.delete(name);
        this.#log.info({ job: name }, 'job removed; it will not be scheduled again');
      }
    }
    for (const job of jobs) {
      const old = this.#entries.get(job.name);
      if (old && old.job.schedule === job.schedule) {
        old.job = job;
        continue;
      }
      void old?.task?.destroy();
      const entry: Entry = { job, task: null };
      if (job.schedule && !this.#stopped) {
        entry.task = cron.schedule(job.schedule, () => { void this.fire(job.name, 'schedule'); }, { timezone: this.#timezone, name: job.name });
      }
      this.#entries.set(job.name, entry);
      // A job without a schedule runs only when fired (catch-up, a trigger): "scheduled" would be untrue.
      if (entry.task) this.#log.info({ job: job.name, schedule: job.schedule, next: entry.task.getNextRun() ?? null }, old ? 'job schedule changed' : 'job scheduled');
      else this.#log.debug({ job: job.name }, old ? 'job no longer has a schedule' : 'job registered without a schedule (runs only when triggered)');
    }
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  busy(name: string): boolean {
    return this.#inFlight.has(name);
  }

  nextRun(name: string): Date | null {
    return this.#entries.get(name)?.task?.getNextRun() ?? null;
  }

  /** Starts the job now unless it is running (or the scheduler stopped); returns the run, or null when skipped. */
  fire(name: string, trigger: Trigger): Promise<void> | null {
    const entry = this.#entries.get(name);
    if (!entry) return null;
    if (this.#stopped) {
      skippedTicks.inc({ job: name, reason: 'stopping' });
      return null;
    }
    const running = this.#inFlight.get(name);
    if (running) {
      skippedTicks.inc({ job: name, reason: 'overlap' });
      this.#log.warn({ job: name, trigger }, 'previous run still in progress; this tick is skipped');
      return null;
    }
    const run = entry.job.run(trigger)
      .catch((err: unknown) => { this.#log.error({ job: name, err: (err as Error)?.message ?? String(err) }, 'job failed'); })
      .finally(() => { this.#inFlight.delete(name); });
    this.#inFlight.set(name, run);
    return run;
  }

  /** The job's current run, if any (e.g. a mapping awaiting the model build in progress). */
  current(name: string): Promise<void> | undefined {
    return this.#inFlight.get(name);
  }

  /** Stops every schedule; runs in flight continue until drained. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const entry of this.#entries.values()) void entry.task?.destroy();
  }

  /** Waits for runs in flight, at most `timeoutMs`; true when all finished. */
  async drain(timeoutMs: number): Promise<boolean> {
    const all = Promise.all(this.#inFlight.values()).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); });
    try {
      return await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  inFlightNames(): string[] {
    return [...this.#inFlight.keys()];
  }
}
