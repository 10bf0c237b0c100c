import { resolveConnection, type ProjectConfig } from '../config/load.ts';
import { ConfigError, formatProblem } from '../errors.ts';

/**
 * Mappings whose connection cannot be resolved from the environment (a `${VAR}` it needs is not set): the
 * daemon reports them at start and shows them as disabled instead of scheduling a run that fails at night.
 * Name -> what is missing (never the values).
 */
export function mappingsWithoutCredentials(config: ProjectConfig, env: NodeJS.ProcessEnv = process.env): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of config.mappings) {
    try {
      resolveConnection(config, m.value.destination.connection, env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      out.set(m.value.name, err.problems.map((p) => formatProblem(p).split('\n')[0]).join('; '));
    }
  }
  return out;
}
