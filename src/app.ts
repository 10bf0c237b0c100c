import { mappingBlockDeclarations } from '../destinations/registry.ts';
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
  /** Told about the mapping files left out by a tolerant load (`skipBrokenMappings`), before `fn` runs. */
  onBrokenMappings?: (broken: ProjectConfig['broken']) => void;
}

/**
 * Loads and checks the project with what the destinations declare (their mapping blocks): the one way the
 * CLI and the daemon read configuration, so `validate --offline`, every command and a daemon reload check
 * the same things.
 */
export function loadConfig(opts: LoadOptions = {}): Promise<ProjectConfig> {
  return loadProject({ ...opts, mappingBlocks: mappingBlockDeclarations() });
}

/** Loads config, opens the warehouse, runs `fn`, and always closes the warehouse. */
export async function withApp<T>(opts: AppOptions, fn: (app: App) => Promise<T>): Promise<T> {
  const config = opts.config ?? (await loadConfig(opts));
  if (config.broken?.length) opts.onBrokenMappings?.(config.broken);
  const logger = log();
  const warehouse = await openWarehouse({ url: warehouseUrl(config.settings.warehouse.url), dataDir: opts.dataDir, log: logger });
  logger.debug({ warehouse: warehouse.description }, 'warehouse open');
  try {
    return await fn({ config, warehouse, log: logger });
  } finally {
    await warehouse.close();
  }
}
