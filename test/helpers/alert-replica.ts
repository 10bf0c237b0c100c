/**
 * One alert dispatcher as its own process (a daemon replica without the scheduler): loads the project in
 * argv[2], runs the dispatcher on its database, prints "ready", and stops cleanly on SIGTERM (exit 0).
 */
import pg from 'pg';
import { loadConfig } from '../../src/app.ts';
import { AlertDispatcher } from '../../src/alerts/dispatcher.ts';
import { createRootLogger } from '../../src/log.ts';

const config = await loadConfig({ root: process.argv[2]! });
const pool = new pg.Pool({ connectionString: config.settings.warehouse.url, max: 4 });
const dispatcher = new AlertDispatcher({ pool, schema: config.settings.state.schema, config: () => config, log: createRootLogger({ level: 'warn', pretty: false }) });
dispatcher.start();
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void dispatcher.stop().then(() => pool.end()).then(() => process.exit(0), () => process.exit(1));
});
