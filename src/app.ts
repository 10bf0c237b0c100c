import { loadProject, type LoadOptions, type ProjectConfig } from './config/load.ts';
import { openWarehouse, warehouseUrl, type Warehouse } from './db/warehouse.ts';
import { log, type Logger } from './log.ts';

/** What a command works with: the validated project configuration, the warehouse, a logger. */
export interface App {
  config: ProjectConfig;
  warehouse: Warehouse;
  log: Logger;
}

export interface AppOptions extends LoadOptions {
  /** Folder for the embedded database (default .segsync/pgdata). */
  dataDir?: string;
  /** Configuration already loaded by the caller (not read again). */
  config?: ProjectConfig;
}

/** Loads config, opens the warehouse, runs `fn`, and always closes the warehouse. */
export async function withApp<T>(opts: AppOptions, fn: (app: App) => Promise<T>): Promise<T> {
  const config = opts.config ?? (await loadProject(opts));
  const logger = log();
  const warehouse = await openWarehouse({ url: warehouseUrl(config.settings.warehouse.url), dataDir: opts.dataDir, log: logger });
  logger.debug({ warehouse: warehouse.description }, 'warehouse open');
  try {
    return await fn({ config, warehouse, log: logger });
  } finally {
    await warehouse.close();
  }
}
