import type { Command } from 'commander';
import { loadConfig, type App } from '../../app.ts';
import { Daemon } from '../../daemon/daemon.ts';
import { syncEngine } from '../../daemon/sync-adapter.ts';
import { installSignals } from '../../daemon/signals.ts';
import { openWarehouse, warehouseUrl } from '../../db/warehouse.ts';
import { UsageError } from '../../errors.ts';
import { log } from '../../log.ts';
import { appOptions, integer } from '../options.ts';

const port = integer(0, 65535);

/** SEGSYNC_HTTP_PORT, checked like --port; the error names the variable and its value. */
function envPort(value: string): number {
  try {
    return port(value);
  } catch (err) {
    throw new UsageError(`SEGSYNC_HTTP_PORT: ${(err as Error).message}, a port number (0 = any free port); got '${value}'`);
  }
}

/** Composition root of the daemon: config -> warehouse -> engine -> daemon -> signals. Nothing else happens here. */
export function registerDaemon(program: Command): void {
  program.command('daemon')
    .description('Run unattended: every mapping on its cron schedule, model rebuilds on models.schedule, HTTP /healthz /readyz /metrics /status. SIGTERM/SIGINT stop gracefully (twice: at once), SIGHUP reloads the configuration. See docs/daemon.md.')
    .option('--port <n>', 'HTTP port (default: $SEGSYNC_HTTP_PORT, else daemon.port in config/segsync.yaml, else 9464)', port)
    .action(async (opts: { port?: number }, cmd: Command) => {
      const port = opts.port ?? (process.env.SEGSYNC_HTTP_PORT ? envPort(process.env.SEGSYNC_HTTP_PORT) : undefined);
      // At start a broken mapping file is left out and reported (the daemon runs the others); a reload
      // (SIGHUP) is all or nothing: a broken file rejects it and the running configuration stays.
      const loadOpts = appOptions(cmd);
      const config = await loadConfig(loadOpts);
      const logger = log();
      const warehouse = await openWarehouse({ url: warehouseUrl(config.settings.warehouse.url), dataDir: loadOpts.dataDir, log: logger });
      const app: App = { config, warehouse, log: logger };
      const daemon = new Daemon({ app, engine: syncEngine, loadConfig: () => loadConfig({ ...loadOpts, skipBrokenMappings: false }), ...(port === undefined ? {} : { port }) });
      let closed: Promise<void> | null = null;
      const close = () => (closed ??= warehouse.close());
      // Signals first: a SIGTERM or SIGHUP during a slow start must not kill the process by default action.
      const uninstall = installSignals({ log: logger, stop: (reason) => daemon.stop(reason), reload: () => daemon.reload(), cleanup: close });
      try {
        await daemon.start();
      } catch (err) {
        uninstall();
        await daemon.stop('start failed');
        await close();
        throw err;
      }
    });
}
