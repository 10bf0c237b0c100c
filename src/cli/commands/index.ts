import type { Command } from 'commander';
import { registerAlerts } from './alerts.ts';
import { registerAudit } from './audit.ts';
import { registerDaemon } from './daemon.ts';
import { registerUi } from './ui.ts';
import { registerDemo } from './demo.ts';
import { registerDemoData } from './demo-data.ts';
import { registerEvents } from './events.ts';
import { registerState } from './state.ts';
import { registerLoad } from './load.ts';
import { registerModels } from './models.ts';
import { registerMonitors, registerSync } from './sync.ts';
import { registerForget } from './forget.ts';
import { registerTokens } from './tokens.ts';
import { registerConfigSchema, registerValidate } from './validate.ts';

/** Every CLI command, registered explicitly. Each module adds its command(s) to the program. */
export const commands: Array<(program: Command) => void> = [
  registerDemo,
  registerValidate,
  registerConfigSchema,
  registerLoad,
  registerDemoData,
  registerModels,
  registerSync,
  registerMonitors,
  registerDaemon,
  registerAlerts,
  registerAudit,
  registerTokens,
  registerForget,
  registerUi,
  registerEvents,
  registerState,
];
