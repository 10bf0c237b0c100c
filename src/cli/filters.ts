import type { App } from '../app.ts';
import { nearestKey } from '../config/suggest.ts';
import { UsageError } from '../errors.ts';
import { maskDeep } from '../log.ts';
import { mappingsInState, runMappingOf } from '../state/cli-lookups.ts';

/**
 * Checks for the CLI's filter values: a value that matches nothing is an error naming the allowed ones
 * (exit 2), never an empty answer that reads as "no such records".
 */

/** `value` must be one of `allowed`; the error names them and the nearest one. */
export function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  const near = nearestKey(value, allowed);
  throw new UsageError(`${flag} '${value}' is not one of: ${allowed.join(', ')}`, near ? `did you mean '${near}'?` : undefined);
}

/** A comma-separated list, each one of `allowed`. */
export function someOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  return value.split(',').map((v) => oneOf(flag, v.trim(), allowed));
}

/** An instant: an ISO 8601 date (UTC midnight) or date-time. */
export function instant(flag: string, value: string): Date {
  const d = /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(`${value}T00:00:00Z`) : /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(value) ? new Date(value) : new Date(NaN);
  if (Number.isNaN(d.getTime())) throw new UsageError(`${flag} '${value}' is not a date`, 'an ISO 8601 date or date-time: 2026-11-01, 2026-11-01T08:00:00Z');
  return d;
}

/** --since must come before --until. */
export function window(since: string | undefined, until: string | undefined): { since?: Date; until?: Date } {
  const s = since === undefined ? undefined : instant('--since', since);
  const u = until === undefined ? undefined : instant('--until', until);
  if (s && u && s >= u) throw new UsageError(`--since ${since} is not before --until ${until}`);
  return { ...(s ? { since: s } : {}), ...(u ? { until: u } : {}) };
}

/** A mapping the config names (or named once: it has runs in the state); otherwise a usage error listing them. */
export async function knownMapping(app: App, name: string): Promise<void> {
  const configured = [...app.config.mappings.map((m) => m.value.name), ...(app.config.broken ?? []).map((b) => b.name)];
  if (configured.includes(name)) return;
  const inState = await mappingsInState(app.warehouse.pool, app.config.settings.state.schema);
  if (inState.includes(name)) return;
  const all = [...new Set([...configured, ...inState])].sort();
  const near = nearestKey(name, all);
  throw new UsageError(`no mapping named '${name}'`, `${near ? `did you mean '${near}'? ` : ''}mappings: ${all.join(', ') || '(none)'}`);
}

/** A run that exists; otherwise a usage error. */
export async function knownRun(app: App, id: number): Promise<string> {
  const mapping = await runMappingOf(app.warehouse.pool, app.config.settings.state.schema, id);
  if (mapping === null) throw new UsageError(`no run ${id}`, 'segsync runs lists the runs');
  return mapping;
}

/** {create: 3, update: 0, ...} as "3 create, 0 update, ..." in the order given, leaving out absent ones. */
export function counts(obj: Record<string, unknown> | null | undefined, order: readonly string[]): string {
  if (!obj) return '';
  return order.filter((k) => typeof obj[k] === 'number' && (obj[k] !== 0 || ['create', 'update', 'remove', 'delivered', 'failed'].includes(k))).map((k) => `${(obj[k] as number).toLocaleString('en-US')} ${k}`).join(', ');
}

const show = (v: unknown) => (v === null || v === undefined ? '∅' : typeof v === 'object' ? JSON.stringify(v) : String(v));

/**
 * The values a receipt's record carried, PII masked: changed fields as "field: before -> after" for an
 * update, every field for a create, "removed" for a remove.
 */
export function sentValues(op: string, before: Record<string, unknown> | null, after: Record<string, unknown> | null): string {
  const b = (maskDeep(before ?? {}) ?? {}) as Record<string, unknown>;
  const a = (maskDeep(after ?? {}) ?? {}) as Record<string, unknown>;
  if (op === 'remove') return before ? `removed (was ${Object.entries(b).map(([k, v]) => `${k}: ${show(v)}`).join(', ')})` : 'removed';
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  if (op === 'create' || !before) return keys.map((k) => `${k}: ${show(a[k])}`).join(', ');
  const changed = keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  return changed.length ? changed.map((k) => `${k}: ${show(b[k])} -> ${show(a[k])}`).join(', ') : '(resent unchanged)';
}

/** A text cut for a table cell. */
export function cut(text: string | null | undefined, max = 80): string {
  if (!text) return '';
  const one = text.replace(/\s*[\r\n]+\s*/g, ' / ');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}
