#!/usr/bin/env -S node --max-semi-space-size=8
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError, describeError, SegsyncError, UsageError } from '../errors.ts';
import { log } from '../log.ts';
import { commands } from './commands/index.ts';
import { enterProject } from './paths.ts';
import { configureOutput, type OutputOptions } from './terminal.ts';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Commander's own exits that are not errors: --help, --version. */
const NOT_ERRORS = new Set(['commander.helpDisplayed', 'commander.version']);

/** Composition root of the CLI: builds the command tree from the registered commands and maps errors to exits. */
const program = new Command('segsync')
  .description('Reverse-ETL for customer segments: build RFM models in Postgres, deliver only what changed to CRMs, CDPs and files, and prove it arrived.')
  .version(version, '-V, --version', 'print the segsync version')
  .option('--project <dir>', 'project folder holding config/, mappings/ and .segsync/ (default: $SEGSYNC_PROJECT, else the working directory); paths you type stay relative to where you are')
  .option('--config <file>', 'settings file (default: config/segsync.yaml in the project)', 'config/segsync.yaml')
  .option('--mappings <dir>', 'mappings folder (default: mappings in the project)', 'mappings')
  .option('--data-dir <dir>', 'embedded database folder, used when no warehouse URL is configured (default: .segsync/pgdata in the project)', '.segsync/pgdata')
  .option('-q, --quiet', 'only warnings and errors on stderr (warnings are always shown)')
  .option('-v, --verbose', 'debug lines too')
  .option('--log-format <format>', 'json or text (default: text; json for the daemon without a terminal, or with SEGSYNC_LOG_JSON=1)')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .hook('preAction', (root, action) => {
    const o = root.opts<OutputOptions & { project?: string }>();
    configureOutput(o, action.name());
    enterProject(o.project);
  });

for (const register of commands) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Every usage mistake commander catches (unknown option or command, missing or bad argument) is exit 2,
    // like segsync's own usage and config errors.
    process.exitCode = NOT_ERRORS.has(err.code) ? 0 : 2;
  } else {
    process.stderr.write(`segsync: ${describeError(err)}\n`);
    if (!(err instanceof SegsyncError)) log().debug({ err }, 'unexpected error');
    process.exitCode = err instanceof ConfigError || err instanceof UsageError ? 2 : 1;
  }
}
