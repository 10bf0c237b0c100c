import { InvalidArgumentError, type Command } from 'commander';
import type { AppOptions } from '../app.ts';
import type { ProjectConfig } from '../config/load.ts';
import { formatProblem } from '../errors.ts';
import { userPath } from './paths.ts';

/**
 * The global options every command inherits, as AppOptions. A path the user typed is the user's (resolved
 * against the directory the command was started in); a default is the project's (config/segsync.yaml,
 * mappings, .segsync/pgdata in the project folder, see paths.ts).
 */
export function appOptions(cmd: Command): AppOptions {
  const o = cmd.optsWithGlobals<{ config: string; mappings: string; dataDir: string }>();
  const typed = (key: string, value: string) => (cmd.getOptionValueSourceWithGlobals(key) === 'cli' ? userPath(value) : value);
  return {
    settingsFile: typed('config', o.config), mappingsDir: typed('mappings', o.mappings), dataDir: typed('dataDir', o.dataDir),
    // One broken mapping file does not stop the command for the others: it is reported and left out.
    skipBrokenMappings: true, onBrokenMappings: reportBroken,
  };
}

/** One line per mapping file left out, on stderr (always shown, whatever the log level). */
export function reportBroken(broken: ProjectConfig['broken']): void {
  for (const b of broken) {
    const first = b.problems[0];
    process.stderr.write(`segsync: warning: mapping ${b.name} (${b.file}) left out: ${b.problems.length} problem(s)${first ? `, first: ${formatProblem(first).split('\n')[0]}` : ''}; segsync validate lists them\n`);
  }
}

/**
 * A commander parser for a whole-number option between `min` and `max`: a bad value is a usage error naming
 * the option and the value (commander adds both), never a NaN that reaches the database.
 */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected an integer >= ${min}` : `expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}
