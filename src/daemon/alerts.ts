import { AlertDispatcher } from '../alerts/dispatcher.ts';
import type { DaemonContext } from './context.ts';

/**
 * The daemon's alert dispatcher (src/alerts/dispatcher.ts, docs/alerts.md): started with the scheduler, reads
 * the configuration in force at every tick (a SIGHUP reload changes channels and routes without a restart),
 * stopped on SIGTERM after the runs drained, letting sends in flight finish.
 */
export function startAlerts(ctx: DaemonContext): { stop(): Promise<void> } {
  const dispatcher = new AlertDispatcher({
    pool: ctx.app.warehouse.pool,
    schema: ctx.app.config.settings.state.schema,
    config: () => ctx.app.config,
    log: ctx.app.log.child({ component: 'alerts' }),
  });
  dispatcher.start();
  return { stop: () => dispatcher.stop() };
}
