import { describeError } from '../errors.ts';
import { retryPending } from '../erasure/forget.ts';
import { daemonActor } from '../state/actor.ts';
import type { DaemonContext } from './context.ts';
import type { Job } from './scheduler.ts';

export const ERASURE_JOB = 'erasures';

/**
 * Open erasures (segsync forget) retried on privacy.erasure_schedule (default hourly): the steps a destination
 * refused are tried again, and one past privacy.erasure_sla raises erasure_overdue, until every destination is done.
 */
export function erasureJob(ctx: DaemonContext): Job {
  return {
    name: ERASURE_JOB,
    schedule: ctx.app.config.settings.privacy.erasure_schedule,
    run: async () => {
      try {
        const r = await retryPending(ctx.app, daemonActor('erasure'), ctx.signal);
        if (r.length) ctx.app.log.info({ erasures: r }, 'open erasures retried');
      } catch (err) {
        ctx.app.log.error({ err: describeError(err) }, 'retrying open erasures failed; the next tick tries again');
      }
    },
  };
}
