import { InvalidArgumentError, type Command } from 'commander';
import type { AppOptions } from '../app.ts';

/** The global options every command inherits, as AppOptions. */
export function appOptions(cmd: Command): AppOptions {
  const o = cmd.optsWithGlobals<{ config: string; mappings: string; dataDir: string }>();
  return { settingsFile: o.config, mappingsDir: o.mappings, dataDir: o.dataDir };
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
