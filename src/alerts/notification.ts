import { maskDeep } from '../log.ts';
import type { Severity } from '../state/events.ts';

/**
 * What one notification says, whatever the channel: what happened, to which mapping, since when, how often,
 * and where to look. Built once when the group is due (PII masked), stored with the delivery, rendered by
 * each channel in its own format.
 */
export interface Notification {
  action: 'trigger' | 'repeat' | 'resolve' | 'test';
  /** Stable per incident: PagerDuty's dedup_key, the webhook's incident id. */
  incident: string;
  groupId: number | null;
  kind: string;
  severity: Severity;
  mapping: string | null;
  title: string;
  /** The latest event's message (what happened). */
  message: string;
  since: string;
  lastAt: string;
  events: number;
  runId: number | null;
  link: string | null;
  labels: Record<string, string>;
  resolveReason?: string | null;
}

/** Where the dashboard shows it: the run (or held plan), else the mapping, else the alerts page. */
export function dashboardLink(publicUrl: string | undefined, runId: number | null, mapping: string | null): string | null {
  if (!publicUrl) return null;
  const base = publicUrl.replace(/\/+$/, '');
  if (runId !== null) return `${base}/runs/${runId}`;
  if (mapping) return `${base}/mappings/${encodeURIComponent(mapping)}`;
  return `${base}/`;
}

export function buildNotification(n: Omit<Notification, 'title'>): Notification {
  const subject = n.mapping ?? n.labels.monitor ?? n.labels.destination ?? n.labels.model ?? 'segsync';
  const what = n.kind.replaceAll('_', ' ');
  const title = n.action === 'resolve' ? `Resolved: ${what} on ${subject}`
    : n.action === 'test' ? 'segsync test message'
    : `${n.severity.toUpperCase()}: ${what} on ${subject}${n.action === 'repeat' ? ' (still firing)' : ''}`;
  return maskDeep({ ...n, title }) as Notification;
}

/** The lines every plain-text rendering shares. */
export function textLines(n: Notification): string[] {
  const lines = [n.title, '', n.message];
  if (n.mapping) lines.push(`Mapping: ${n.mapping}`);
  if (n.action !== 'test') lines.push(`Since: ${n.since} (${n.events} event${n.events === 1 ? '' : 's'}, latest ${n.lastAt})`);
  if (n.action === 'resolve' && n.resolveReason) lines.push(`Cleared: ${n.resolveReason}`);
  if (n.link) lines.push(`Details: ${n.link}`);
  return lines;
}

export function plainText(n: Notification): string {
  return textLines(n).join('\n');
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
