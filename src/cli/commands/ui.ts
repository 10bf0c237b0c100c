import type { Command } from 'commander';
import { loadConfig, type App } from '../../app.ts';
import { mountControlPlane } from '../../api/server.ts';
import { credentialsConfigured } from '../../api/authenticate.ts';
import { openWarehouse, warehouseUrl } from '../../db/warehouse.ts';
import { startHttp } from '../../daemon/http.ts';
import { ensureState } from '../../sync/run.ts';
import { log } from '../../log.ts';
import { appOptions, integer } from '../options.ts';

/**
 * `segsync ui`: the dashboard and the API without the daemon's scheduling, so a user of the embedded database
 * can look while nothing runs. Runs start only when someone asks (the API's trigger, an approval).
 */
export function registerUi(program: Command): void {
  program.command('ui')
    .description('serve the dashboard (/) and the API (/api/v1) without scheduling anything; needs SEGSYNC_API_TOKEN; binds daemon.host (default 127.0.0.1). See docs/dashboard.md.')
    .option('--port <n>', 'HTTP port (default: daemon.port in config/segsync.yaml, 9464; 0 = any free port)', integer(0, 65535))
    .option('--host <address>', 'address to bind (default: daemon.host, 127.0.0.1)')
    .action(async (o: { port?: number; host?: string }, cmd: Command) => {
      const loadOpts = appOptions(cmd);
      const config = await loadConfig(loadOpts);
      const logger = log();
      const warehouse = await openWarehouse({ url: warehouseUrl(config.settings.warehouse.url), dataDir: loadOpts.dataDir, log: logger });
      const app: App = { config, warehouse, log: logger };
      await ensureState(app);
      const abort = new AbortController();
      const host = o.host ?? config.settings.daemon.host;
      const http = await startHttp({
        log: logger,
        readiness: async () => ({ ready: true, checks: {} }),
        status: () => ({ mode: 'ui', scheduling: false }),
        mount: (server) => mountControlPlane(server, { app: () => app, signal: abort.signal, shared: new Map() }),
      }, host, o.port ?? config.settings.daemon.port);
      process.stdout.write(`segsync ui: http://${host.includes(':') ? `[${host}]` : host}:${http.port}/ (API: /api/v1/openapi.json)${(await credentialsConfigured(app)) ? '' : '\n  no credential is configured: every page and API call is refused until one is (segsync tokens create --role admin --name me, or SEGSYNC_API_TOKEN)'}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      abort.abort();
      await http.server.close();
      await warehouse.close();
    });
}
