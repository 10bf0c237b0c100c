#!/usr/bin/env -S node --max-semi-space-size=8
import { Command, CommanderError } from 'commander';
import { ConfigError, describeError, SegsyncError, UsageError } from '../errors.ts';
import { log } from '../log.ts';
import { commands } from './commands/index.ts';

/** Composition root of the CLI: builds the command tree from the registered commands and maps errors to exits. */
const program = new Command('segsync')
  .description('Reverse-ETL for customer segments: build RFM models in Postgres, deliver only what changed to CRMs, CDPs and files, and prove it arrived.')
  .option('--config <file>', 'settings file', 'config/segsync.yaml')
  .option('--mappings <dir>', 'mappings folder', 'mappings')
  .option('--data-dir <dir>', 'embedded database folder (used when no warehouse URL is configured)', '.segsync/pgdata')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

for (const register of commands) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`segsync: ${describeError(err)}\n`);
    if (!(err instanceof SegsyncError)) log().debug({ err }, 'unexpected error');
    process.exitCode = err instanceof ConfigError || err instanceof UsageError ? 2 : 1;
  }
}
