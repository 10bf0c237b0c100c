import type { Command } from 'commander';
import { registerModels } from './models.ts';
import { registerSync } from './sync.ts';
import { registerValidate } from './validate.ts';

/** Every CLI command, registered explicitly. Each module adds its command(s) to the program. */
export const commands: Array<(program: Command) => void> = [
  registerValidate,
  registerModels,
  registerSync,
];
