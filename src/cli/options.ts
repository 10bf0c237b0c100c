import type { Command } from 'commander';
import type { AppOptions } from '../app.ts';

/** The global options every command inherits, as AppOptions. */
export function appOptions(cmd: Command): AppOptions {
  const o = cmd.optsWithGlobals<{ config: string; mappings: string; dataDir: string }>();
  return { settingsFile: o.config, mappingsDir: o.mappings, dataDir: o.dataDir };
}
