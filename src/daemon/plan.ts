import type { ProjectConfig } from '../config/load.ts';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { MODELS_JOB } from './context.ts';
import { cronProblem } from './cron.ts';

/**
 * Checks what only the daemon cares about, on top of the loader's checks: every schedule is a valid cron
 * expression, the time zone exists, and `after:` names something the daemon can wait for. All problems are
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
  if (models.schedule) {
    const p = cronProblem(models.schedule);
    if (p) problems.push({ file: settingsFile, ...settingsAt(['models', 'schedule']), path: 'models.schedule', message: `invalid cron expression '${models.schedule}': ${p}`, hint: cronHint });
  }
  for (const m of config.mappings) {
    if (m.value.schedule) {
      const p = cronProblem(m.value.schedule);
      if (p) problems.push({ file: m.file, ...m.where(['schedule']), path: 'schedule', message: `invalid cron expression '${m.value.schedule}': ${p}`, hint: cronHint });
    }
    (m.value.after ?? []).forEach((dep, i) => {
      if (dep !== MODELS_JOB) {
        problems.push({ file: m.file, ...m.where(['after', i]), path: `after.${i}`, message: `unknown dependency '${dep}'`, hint: 'the daemon can wait for: models' });
      }
    });
    if (m.value.after?.includes(MODELS_JOB) && !m.value.schedule && !models.schedule) {
      problems.push({ file: m.file, ...m.where(['after']), path: 'after', message: `${m.value.name} runs after models but neither it nor models.schedule has a schedule, so it would never run`, hint: 'set schedule: on the mapping, or models.schedule in config/segsync.yaml' });
    }
  }
  if (problems.length) throw new ConfigError(problems);
}

const cronHint = 'five fields (minute hour day month weekday) or six with seconds first, e.g. "0 */2 * * *" or "*/30 * * * * *"';
