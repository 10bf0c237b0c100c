import type { ProjectConfig } from '../config/load.ts';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { MODELS_JOB } from './context.ts';

/**
 * Checks what only the daemon cares about, on top of the loader's checks (which include the cron syntax):
 * the time zone exists, and a mapping that waits for the models has a schedule to run on. All problems are
 * reported together with file:line:column; on a reload this is what decides between "take effect" and
 * "rejected, old config keeps running".
 */
export function checkDaemonConfig(config: ProjectConfig): void {
  const problems: ConfigProblem[] = [];
  const settingsFile = config.settingsFile?.file ?? 'config/segsync.yaml';
  const settingsAt = (parts: string[]) => config.settingsFile?.where(parts) ?? { line: 1, column: 1 };
  const { models, daemon } = config.settings;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: daemon.timezone });
  } catch {
    problems.push({ file: settingsFile, ...settingsAt(['daemon', 'timezone']), path: 'daemon.timezone', message: `unknown time zone '${daemon.timezone}'`, hint: 'an IANA name such as UTC or Europe/Berlin' });
  }
  for (const m of config.mappings) {
    if (m.value.after?.includes(MODELS_JOB) && !m.value.schedule && !models.schedule) {
      problems.push({ file: m.file, ...m.where(['after']), path: 'after', message: `${m.value.name} runs after models but neither it nor models.schedule has a schedule, so it would never run`, hint: 'set schedule: on the mapping, or models.schedule in config/segsync.yaml' });
    }
  }
  if (problems.length) throw new ConfigError(problems);
}
