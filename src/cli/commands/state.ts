import type { Command } from 'commander';
import { loadConfig } from '../../app.ts';
import { exportEmbedded, importEmbedded } from '../../db/embedded-backup.ts';
import { warehouseUrl } from '../../db/warehouse.ts';
import { UsageError } from '../../errors.ts';
import { appOptions } from '../options.ts';
import { userPath } from '../paths.ts';

/** `segsync state export|import`: back up and restore the embedded database, which holds the ledger. */
export function registerState(program: Command): void {
  const state = program.command('state').description('back up and restore the embedded database (the ledger: receipts and delivered state); see README "The embedded database is the ledger"');
  const serverHint = (schema: string) => `the warehouse is a PostgreSQL server: back up segsync's state with pg_dump --schema=${schema} (and restore with pg_restore/psql)`;

  state.command('export <file>')
    .description('write the embedded database to <file> (a gzip tarball of the data folder, after a checkpoint); stop the daemon first')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const opts = appOptions(cmd);
      const config = await loadConfig(opts);
      if (warehouseUrl(config.settings.warehouse.url)) throw new UsageError('state export is for the embedded database', serverHint(config.settings.state.schema));
      const r = await exportEmbedded(opts.dataDir ?? '.segsync/pgdata', userPath(file));
      process.stdout.write(`exported the embedded database to ${file} (${(r.bytes / 1e6).toFixed(1)} MB); restore with: segsync state import ${file}\n`);
    });

  state.command('import <file>')
    .description('restore the embedded database from a file written by state export; an existing one needs --replace and is kept aside, not deleted')
    .option('--replace', 'replace the existing embedded database (moved to <folder>.before-import-<time>)')
    .action(async (file: string, o: { replace?: boolean }, cmd: Command) => {
      const opts = appOptions(cmd);
      const config = await loadConfig(opts);
      if (warehouseUrl(config.settings.warehouse.url)) throw new UsageError('state import is for the embedded database', serverHint(config.settings.state.schema));
      const r = await importEmbedded(opts.dataDir ?? '.segsync/pgdata', userPath(file), { replace: o.replace ?? false, stateSchema: config.settings.state.schema });
      process.stdout.write(`restored ${file}: ${r.runs} run(s), ${r.receipts} receipt(s)${r.keptAside ? `; the previous database is kept at ${r.keptAside}` : ''}\n`);
    });
}
