import type { ProjectConfig } from '../config/load.ts';
import type { AlertEvent, GroupSpec } from '../state/alerts.ts';

/**
 * How an event becomes alert groups, and what clears a group (docs/alerts.md has the table).
 * - A group is keyed by (kind, subject): the mapping, else the monitor, destination or model it is about.
 * - A run failure with a network-level error also raises `destination_down` for its connection; a block by
 *   a stale model also raises `model_stale` for that model. Those are the sources the default inhibition
 *   rules use, so people hear "the CRM is down" once rather than once per mapping.
 */

export type ClearRule =
  | { by: 'success'; mappings: string[] }
  | { by: 'run_left_held' }
  | { by: 'event' }
  | { by: 'timeout' };

/** Events that only clear a group: never an alert of their own. */
const RESOLVERS: Record<string, { key: (ev: AlertEvent) => string | null; reason: string }> = {
  monitor_recovered: { key: (ev) => (typeof ev.details.monitor === 'string' ? `monitor|${ev.details.monitor}` : null), reason: 'the monitor is back to ok' },
  config_reloaded: { key: () => 'config_rejected|', reason: 'a later configuration reload was applied' },
};

const NETWORK_CODE = /UNREACHABLE|NETWORK|TIMEOUT|SERVER_ERROR|ECONNREFUSED|ENOTFOUND/;

function mappingInfo(config: ProjectConfig, name: string | null): { destination?: string; model?: string } {
  if (!name) return {};
  const m = config.mappings.find((x) => x.value.name === name)?.value;
  if (!m) return {};
  return { destination: m.destination.connection, model: m.source.model ?? 'sql' };
}

export function classify(ev: AlertEvent, config: ProjectConfig): { groups: GroupSpec[]; resolves: Array<{ key: string; reason: string }> } {
  const resolver = RESOLVERS[ev.kind];
  if (resolver) {
    const key = resolver.key(ev);
    return { groups: [], resolves: key ? [{ key, reason: resolver.reason }] : [] };
  }
  const info = mappingInfo(config, ev.mapping);
  const cause = typeof ev.details.cause === 'string' ? ev.details.cause : undefined;
  const monitor = typeof ev.details.monitor === 'string' ? ev.details.monitor : cause?.startsWith('monitor ') ? cause.slice(8) : undefined;
  const labels: Record<string, string> = {
    kind: ev.kind, severity: ev.severity,
    ...(ev.mapping ? { mapping: ev.mapping } : {}),
    ...(info.destination ? { destination: info.destination } : {}),
    ...(info.model ? { model: info.model } : {}),
    ...(monitor ? { monitor } : {}),
    ...(cause ? { cause } : {}),
  };
  const subject = ev.mapping ?? monitor ?? '';
  const groups: GroupSpec[] = [{ key: `${ev.kind}|${subject}`, kind: ev.kind, mapping: ev.mapping, labels, severity: ev.severity, message: ev.message, runId: ev.runId }];
  const code = typeof ev.details.code === 'string' ? ev.details.code : '';
  if (ev.kind === 'run_failed' && info.destination && NETWORK_CODE.test(code)) {
    groups.push({
      key: `destination_down|${info.destination}`, kind: 'destination_down', mapping: null,
      labels: { kind: 'destination_down', severity: 'error', destination: info.destination },
      severity: 'error', message: `destination ${info.destination} unreachable (${code}): ${ev.message}`, runId: null,
    });
  }
  if (ev.kind === 'blocked' && cause === 'stale model' && info.model) {
    groups.push({
      key: `model_stale|${info.model}`, kind: 'model_stale', mapping: null,
      labels: { kind: 'model_stale', severity: ev.severity, model: info.model },
      severity: ev.severity, message: `model ${info.model} is stale; mappings that depend on it are blocked (latest: ${ev.message})`, runId: null,
    });
  }
  return { groups, resolves: [] };
}

const ON_SUCCESS = new Set(['run_failed', 'run_partial', 'blocked', 'overdue', 'sla_breach']);

/** What clears a group of this kind (see classify). */
export function clearRule(kind: string, labels: Record<string, string>, config: ProjectConfig): ClearRule {
  // A mapping removed from the configuration will never run again: its incidents expire instead.
  if (ON_SUCCESS.has(kind) && labels.mapping) {
    return config.mappings.some((m) => m.value.name === labels.mapping) ? { by: 'success', mappings: [labels.mapping] } : { by: 'timeout' };
  }
  if (kind === 'destination_down') return { by: 'success', mappings: config.mappings.filter((m) => m.value.destination.connection === labels.destination).map((m) => m.value.name) };
  if (kind === 'model_stale') return { by: 'success', mappings: config.mappings.filter((m) => (m.value.source.model ?? 'sql') === labels.model).map((m) => m.value.name) };
  if (kind === 'run_held') return { by: 'run_left_held' };
  // A build that failed has no success event of its own: a mapping that waits for the models succeeding
  // is the sign the next build worked (a failed build blocks them all).
  if (kind === 'build_failed') {
    const after = config.mappings.filter((m) => m.value.after?.includes('models')).map((m) => m.value.name);
    if (after.length) return { by: 'success', mappings: after };
  }
  if (kind === 'monitor' || kind === 'config_rejected') return { by: 'event' };
  return { by: 'timeout' };
}
