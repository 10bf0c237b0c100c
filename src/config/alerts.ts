import { z } from 'zod';
import { Duration } from './mapping.ts';

/**
 * The `alerts:` block of config/segsync.yaml (docs/alerts.md): channels by name, routes from severity / kind /
 * mapping to channels, grouping timers, quiet hours, inhibition. Secrets come from the environment as ${VAR}
 * (an unset one is a located error when the file is loaded, and a SIGHUP reload with one is rejected).
 */

/** The labels every alert group carries; matchers, inhibition's `equal` and silences name these. */
export const ALERT_LABELS = ['kind', 'severity', 'mapping', 'destination', 'model', 'monitor', 'cause'] as const;
export type AlertLabel = (typeof ALERT_LABELS)[number];

export interface Matcher {
  label: AlertLabel;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

const MATCHER = /^([a-z_]+)\s*(=~|!~|!=|=)\s*(.*)$/;

/** Parses `label=value`, `label!=value`, `label=~regex`, `label!~regex`; throws a message for people. */
export function parseMatcher(text: string): Matcher {
  const m = MATCHER.exec(text.trim());
  if (!m) throw new Error(`'${text}' is not a matcher: use label=value, label!=value, label=~regex or label!~regex`);
  const [, label, op, raw] = m as unknown as [string, string, Matcher['op'], string];
  if (!(ALERT_LABELS as readonly string[]).includes(label)) throw new Error(`unknown label '${label}' in '${text}': labels are ${ALERT_LABELS.join(', ')}`);
  const value = raw.trim().replace(/^"(.*)"$/, '$1');
  if (op === '=~' || op === '!~') {
    try {
      new RegExp(`^(?:${value})$`);
    } catch (err) {
      throw new Error(`invalid regular expression in '${text}': ${(err as Error).message}`);
    }
  }
  return { label: label as AlertLabel, op, value };
}

export function matches(ms: ReadonlyArray<Matcher>, labels: Readonly<Record<string, string | undefined>>): boolean {
  return ms.every((m) => {
    const v = labels[m.label] ?? '';
    switch (m.op) {
      case '=': return v === m.value;
      case '!=': return v !== m.value;
      case '=~': return new RegExp(`^(?:${m.value})$`).test(v);
      case '!~': return !new RegExp(`^(?:${m.value})$`).test(v);
    }
  });
}

export function formatMatcher(m: Matcher): string {
  return `${m.label}${m.op}${m.value}`;
}

/** A list of matcher strings, each checked where it is written. */
const Matchers = z.array(z.string()).superRefine((list, ctx) => {
  list.forEach((text, i) => {
    try {
      parseMatcher(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: [i], message: `invalid route matcher: ${(err as Error).message}` });
    }
  });
}).transform((list) => list.map(parseMatcher));

const Url = z.string().url('a URL such as https://...');
const common = {
  rate_per_second: z.number().positive().optional().describe('messages per second this channel may send (every replica together); default per type'),
  burst: z.number().int().min(1).max(100).optional().describe('sends allowed at once after a quiet spell (the token bucket\'s depth); default per type'),
  max_attempts: z.number().int().min(1).max(50).default(8).describe('a delivery failing this many times is marked failed (a 429 does not count)'),
  timeout: Duration.default('10s').describe('one request\'s time limit'),
};

export const AlertChannel = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('slack').describe('Slack incoming webhook, Block Kit message (about 1 message/s per channel)'), url: Url.describe('the incoming webhook URL, as ${VAR}'), ...common }),
  z.strictObject({ type: z.literal('teams').describe('Microsoft Teams Workflows webhook, Adaptive Card (28 KB per message)'), url: Url.describe('the Workflows webhook URL (with sig=), as ${VAR}'), ...common }),
  z.strictObject({
    type: z.literal('telegram').describe('Telegram Bot API sendMessage (4,096 characters, about 1 message/s per chat)'),
    bot_token: z.string().min(1).describe('the bot token, as ${VAR}'),
    chat_id: z.union([z.string().min(1), z.number().int()]).describe('the chat (or @channel) to post to'),
    api_url: Url.default('https://api.telegram.org').describe('Bot API base URL'),
    ...common,
  }),
  z.strictObject({
    type: z.literal('pagerduty').describe('PagerDuty Events API v2: trigger and resolve with one dedup_key per incident'),
    routing_key: z.string().min(1).describe('the integration (routing) key, as ${VAR}'),
    api_url: Url.default('https://events.pagerduty.com').describe('Events API base URL (POST <api_url>/v2/enqueue)'),
    ...common,
  }),
  z.strictObject({
    type: z.literal('email').describe('e-mail over SMTP (nodemailer), text and HTML'),
    smtp_url: z.string().regex(/^smtps?:\/\//, 'an smtp:// or smtps:// URL').describe('smtp://user:pass@host:port, as ${VAR}'),
    from: z.string().min(3).describe('sender address'),
    to: z.array(z.string().min(3)).min(1).describe('recipient addresses'),
    ...common,
  }),
  z.strictObject({
    type: z.literal('webhook').describe('a generic webhook signed per the Standard Webhooks spec (webhook-id, webhook-timestamp, webhook-signature)'),
    url: Url.describe('the receiver URL'),
    secret: z.string().regex(/^whsec_[A-Za-z0-9+/=]{16,}$/, 'a Standard Webhooks secret: whsec_ followed by base64').describe('signing secret (whsec_...), as ${VAR}'),
    ...common,
  }),
]);
export type AlertChannel = z.infer<typeof AlertChannel>;
export type ChannelType = AlertChannel['type'];

const Severity = z.enum(['info', 'warning', 'error', 'critical']);
const Clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day HH:MM');

export const Alerts = z.strictObject({
  channels: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'a channel name: lower-case letters, digits, _ and -'), AlertChannel).default({})
    .describe('named channels: {type: slack|teams|telegram|pagerduty|email|webhook, ...}'),
  routes: z.array(z.strictObject({
    match: Matchers.default([]).describe('label matchers, all must hold: severity=critical, kind=~run_.*, mapping!=test (labels: kind, severity, mapping, destination, model, monitor, cause)'),
    channels: z.array(z.string()).min(1).describe('channel names this route sends to'),
  })).default([]).describe('every route whose matchers all hold sends to its channels (a group goes to the union)'),
  group_wait: Duration.default('30s').describe('a new group waits this long for more events before its first notification'),
  group_interval: Duration.default('5m').describe('new events in a notified group are sent at most this often'),
  repeat_interval: Duration.default('4h').describe('a group still firing with nothing new is sent again after this'),
  repeat_by_severity: z.partialRecord(Severity, Duration).default({}).describe('repeat_interval per severity, e.g. {critical: 1h, warning: 12h}'),
  tick: Duration.default('1s').describe('how often the dispatcher looks for due groups and deliveries'),
  retry: z.strictObject({
    base: Duration.default('5s').describe('first retry after this; doubled per attempt'),
    max: Duration.default('10m').describe('longest wait between attempts'),
  }).default({ base: '5s', max: '10m' }).describe('failed deliveries are retried with exponential backoff'),
  resolve_timeout: Duration.default('24h').describe('a group of a kind with no clearing signal is closed (without a resolve notice) after this long without events'),
  quiet_hours: z.array(z.strictObject({
    severities: z.array(Severity).min(1).describe('severities held back during these hours'),
    from: Clock.describe('start, HH:MM'),
    to: Clock.describe('end, HH:MM (before from = over midnight)'),
    timezone: z.string().optional().describe('IANA time zone (default daemon.timezone)'),
  })).default([]).describe('notifications of these severities wait until the quiet hours end'),
  inhibit: z.array(z.strictObject({
    source: Matchers.describe('matchers of the group that inhibits'),
    target: Matchers.describe('matchers of the groups it silences'),
    equal: z.array(z.enum(ALERT_LABELS)).default([]).describe('labels that must be equal in both'),
  })).optional().describe('a firing source group holds back matching target groups; default: a destination down inhibits its run failures, a stale model or failed build its dependents\' blocks, a critical monitor the blocks it causes'),
}).superRefine((a, ctx) => {
  a.routes.forEach((r, i) => r.channels.forEach((c, j) => {
    if (!(c in a.channels)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'channels', j], message: `unknown channel '${c}' (channels: ${Object.keys(a.channels).join(', ') || 'none'})` });
  }));
  a.quiet_hours.forEach((q, i) => {
    if (!q.timezone) return;
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: q.timezone });
    } catch {
      ctx.addIssue({ code: 'custom', path: ['quiet_hours', i, 'timezone'], message: `unknown time zone '${q.timezone}'` });
    }
  });
});
export type Alerts = z.infer<typeof Alerts>;

export const ALERTS_DEFAULTS: Alerts = Alerts.parse({});

/** The inhibition rules in force: the configured ones, or the defaults. */
export function inhibitRules(a: Alerts): Array<{ source: Matcher[]; target: Matcher[]; equal: AlertLabel[] }> {
  if (a.inhibit) return a.inhibit;
  const m = (xs: string[]) => xs.map(parseMatcher);
  return [
    { source: m(['kind=destination_down']), target: m(['kind=~run_failed|run_partial|sla_breach|overdue']), equal: ['destination'] },
    { source: m(['kind=model_stale']), target: m(['kind=blocked']), equal: ['model'] },
    { source: m(['kind=build_failed']), target: m(['kind=~blocked|model_stale']), equal: [] },
    { source: m(['kind=monitor', 'severity=critical']), target: m(['kind=blocked']), equal: ['monitor'] },
  ];
}
