import type { Command } from 'commander';
import { registerDaemon } from './daemon.ts';
import { registerDemoData } from './demo-data.ts';
import { registerLoad } from './load.ts';
import { registerSync } from './sync.ts';
import { registerConfigSchema, registerValidate } from './validate.ts';

/** Every CLI command, registered explicitly. Each module adds its command(s) to the program. */
export const commands: Array<(program: Command) => void> = [
  registerValidate,
  registerConfigSchema,
  registerLoad,
  registerDemoData,
  registerSync,
  registerDaemon,
];
