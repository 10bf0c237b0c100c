import type pg from 'pg';
import type { ProjectConfig } from '../config/load.ts';
import { inhibitRules, matches, parseMatcher, type Alerts, type AlertChannel } from '../config/alerts.ts';
import { withTransaction } from '../db/transaction.ts';
import { quoteIdent } from '../db/sql.ts';
import { durationMs } from '../daemon/duration.ts';
import { maskEmails, type Logger } from '../log.ts';
import {
  claimDelivery, claimDueGroups, claimFiringGroups, claimNewEvents, closeGroup, deliveryFailed, deliverySent, failOrphanDeliveries, firingGroupsLabels, foldEvent,
  holdGroup, listSilences, markIngested, pruneIngested, markResolving, recordNotification, resolveByKey, runState, succeededSince,
  type AlertGroup, type Delivery, type Silence,
} from '../state/alerts.ts';
import type { Severity } from '../state/events.ts';
import { ChannelError, channelBurst, channelRate, channelTimeoutMs, senderFor, type Sender } from './channels/index.ts';
import { classify, clearRule } from './classify.ts';
import { alertDeliveries } from './metrics.ts';
import { buildNotification, dashboardLink, type Notification } from './notification.ts';

/**
 * The alert dispatcher: every replica runs one, on one database. Each tick it
 *   1. folds new events into groups (an event is claimed with SKIP LOCKED and marked, so it is folded once);
 *   2. clears firing groups whose condition cleared (a later run succeeded, the held run was decided...);
 *   3. writes the notifications of groups whose timer is due (group_wait, group_interval, repeat_interval),
 *      unless a silence, an inhibiting group or quiet hours hold them back;
 *   4. sends pending deliveries, each channel on its own (a channel that fails or hangs delays only itself),
 *      at its rate and after any Retry-After, shared through the database by every replica.
 */
export interface DispatcherOptions {
  pool: pg.Pool;
  schema: string;
  /** The configuration in force (a reload changes it between ticks). */
  config(): ProjectConfig;
  log: Logger;
}

export class AlertDispatcher {
  readonly #o: DispatcherOptions;
  readonly #s: string;
  readonly #senders = new Map<string, { spec: string; sender: Sender }>();
  readonly #sending = new Map<string, Promise<void>>();
  #loop: Promise<void> | null = null;
  #stopped = false;
  #wake: (() => void) | null = null;
  #prunedAt = 0;

  constructor(o: DispatcherOptions) {
    this.#o = o;
    this.#s = quoteIdent(o.schema);
  }

  get #alerts(): Alerts {
    return this.#o.config().settings.alerts;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.tick();
      } catch (err) {
        this.#o.log.error({ err: maskEmails((err as Error).message) }, 'alert dispatcher tick failed; trying again next tick');
      }
      if (this.#stopped) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, durationMs(this.#alerts.tick));
        this.#wake = () => { clearTimeout(t); resolve(); };
      });
      this.#wake = null;
    }
  }

  /** Stops the loop; sends in flight finish (each within its channel's timeout) so none is left half-known. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    await Promise.allSettled([...this.#sending.values()]);
    for (const { sender } of this.#senders.values()) await sender.close?.().catch(() => {});
    this.#senders.clear();
  }

  /** One pass of all four steps; sends are started, not awaited (see settle()). */
  async tick(): Promise<void> {
    await this.ingest();
    await this.clear();
    await this.flush();
    this.send();
  }

  /** Waits for the sends started so far (tests, `alerts test`). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#sending.values()]);
  }

  async ingest(): Promise<number> {
    const a = this.#alerts;
    const timers = { groupWaitMs: durationMs(a.group_wait), groupIntervalMs: durationMs(a.group_interval) };
    const config = this.#o.config();
    if (Date.now() - this.#prunedAt > 3_600_000) {
      this.#prunedAt = Date.now();
      await pruneIngested(this.#o.pool, this.#s);
    }
    return withTransaction(this.#o.pool, async (client) => {
      const events = await claimNewEvents(client, this.#s);
      for (const ev of events) {
        const { groups, resolves } = classify(ev, config);
        let first: number | null = null;
        for (const g of groups) {
          const id = await foldEvent(client, this.#s, ev, g, timers);
          first ??= id;
        }
        for (const r of resolves) await resolveByKey(client, this.#s, r.key, ev.at, r.reason);
        await markIngested(client, this.#s, ev.id, first);
      }
      return events.length;
    });
  }

  async clear(): Promise<void> {
    const config = this.#o.config();
    const timeoutMs = durationMs(this.#alerts.resolve_timeout);
    await withTransaction(this.#o.pool, async (client) => {
      for (const g of await claimFiringGroups(client, this.#s)) {
        const rule = clearRule(g.kind, g.labels, config);
        if (rule.by === 'success') {
          const run = await succeededSince(client, this.#s, rule.mappings, g.lastEventAt, g.lastRunId);
          if (run !== null) await markResolving(client, this.#s, g.id, `run ${run} of ${g.mapping ?? rule.mappings.join(', ')} succeeded`);
        } else if (rule.by === 'run_left_held' && g.lastRunId !== null) {
          const state = await runState(client, this.#s, g.lastRunId);
          if (state !== 'held') await markResolving(client, this.#s, g.id, `run ${g.lastRunId} is ${state ?? 'gone'}, no longer held`);
        } else if (rule.by === 'timeout' && Date.now() - g.lastEventAt.getTime() > timeoutMs) {
          await closeGroup(client, this.#s, g.id, `no new event for ${this.#alerts.resolve_timeout}: closed without a resolve notice (this kind has no clearing signal)`);
        }
      }
    });
  }

  async flush(): Promise<void> {
    const config = this.#o.config();
    const a = config.settings.alerts;
    const now = new Date();
    await failOrphanDeliveries(this.#o.pool, this.#s, Object.keys(a.channels));
    await withTransaction(this.#o.pool, async (client) => {
      const due = await claimDueGroups(client, this.#s);
      if (!due.length) return;
      const silences = await listSilences(client, this.#s);
      const firing = await firingGroupsLabels(client, this.#s);
      for (const g of due) {
        if (g.state === 'resolving') {
          const channels = g.notifiedChannels.filter((c) => c in a.channels);
          if (g.notifications > 0 && channels.length) await recordNotification(client, this.#s, g, 'resolve', channels, this.#notification(g, 'resolve'), null);
          else await closeGroup(client, this.#s, g.id);
          continue;
        }
        const intervalAt = new Date(now.getTime() + durationMs(a.group_interval));
        const channels = routeChannels(a, g.labels);
        if (!channels.length) {
          await holdGroup(client, this.#s, g.id, intervalAt, 'no route');
          continue;
        }
        const silence = silences.find((s) => matches(s.matchers.map(parseMatcher), g.labels));
        if (silence) {
          await holdGroup(client, this.#s, g.id, new Date(Math.min(silence.endsAt.getTime() + 1, intervalAt.getTime())), `silence #${silence.id}`);
          continue;
        }
        const inhibitor = inhibitedBy(a, g, firing);
        if (inhibitor !== null) {
          await holdGroup(client, this.#s, g.id, intervalAt, `inhibited by group #${inhibitor}`);
          continue;
        }
        const quietUntil = quietHoursEnd(a, g.severity, now, config.settings.daemon.timezone);
        if (quietUntil) {
          await holdGroup(client, this.#s, g.id, quietUntil, `quiet hours until ${quietUntil.toISOString()}`);
          continue;
        }
        const action = g.notifications === 0 || g.pending > 0 ? 'trigger' : 'repeat';
        const repeatMs = durationMs(a.repeat_by_severity[g.severity] ?? a.repeat_interval);
        await recordNotification(client, this.#s, g, action, channels, this.#notification(g, action), repeatMs);
      }
    });
  }

  #notification(g: AlertGroup, action: 'trigger' | 'repeat' | 'resolve'): Notification {
    return buildNotification({
      action, incident: `segsync-${this.#o.schema}-${g.id}`, groupId: g.id, kind: g.kind, severity: g.severity, mapping: g.mapping,
      message: g.lastMessage, since: g.firstAt.toISOString(), lastAt: g.lastEventAt.toISOString(), events: g.events, runId: g.lastRunId,
      link: dashboardLink(this.#o.config().settings.public_url, g.lastRunId, g.mapping), labels: g.labels, resolveReason: g.resolveReason,
    });
  }

  /** Starts a drain of every configured channel that is not draining already. */
  send(): void {
    for (const [name, c] of Object.entries(this.#alerts.channels)) {
      if (this.#sending.has(name) || this.#stopped) continue;
      const p = this.#drain(name, c).catch((err: unknown) => {
        this.#o.log.error({ channel: name, err: maskEmails((err as Error).message) }, 'alert channel drain failed');
      }).finally(() => this.#sending.delete(name));
      this.#sending.set(name, p);
    }
  }

  #sender(name: string, c: AlertChannel): Sender {
    const spec = JSON.stringify(c);
    const have = this.#senders.get(name);
    if (have && have.spec === spec) return have.sender;
    void have?.sender.close?.();
    const sender = senderFor(c);
    this.#senders.set(name, { spec, sender });
    return sender;
  }

  async #drain(name: string, c: AlertChannel): Promise<void> {
    const bucket = { rate: channelRate(c), burst: channelBurst(c) };
    const timeoutMs = channelTimeoutMs(c);
    while (!this.#stopped) {
      const d = await claimDelivery(this.#o.pool, this.#s, name, bucket, timeoutMs * 2 + 5000);
      if (!d) return;
      await this.#deliver(name, c, d);
    }
  }

  async #deliver(name: string, c: AlertChannel, d: Delivery): Promise<void> {
    const a = this.#alerts;
    try {
      await this.#sender(name, c).send(d.payload as unknown as Notification, { deliveryId: d.id });
      await deliverySent(this.#o.pool, this.#s, d.id);
      alertDeliveries.inc({ channel: name, type: c.type, outcome: 'sent' });
    } catch (err) {
      const e = err instanceof ChannelError ? err : new ChannelError(`${c.type}: ${(err as Error).message}`);
      const message = maskEmails(e.message);
      let retryInMs: number | null;
      if (e.rateLimited) retryInMs = e.retryAfterMs ?? 1000;
      else if (e.permanent || d.attempts >= c.max_attempts) retryInMs = null;
      else retryInMs = Math.max(e.retryAfterMs ?? 0, Math.min(durationMs(a.retry.base) * 2 ** (d.attempts - 1), durationMs(a.retry.max)));
      alertDeliveries.inc({ channel: name, type: c.type, outcome: e.rateLimited ? 'rate_limited' : retryInMs === null ? 'failed' : 'retry' });
      this.#o.log.warn({ channel: name, delivery: d.id, attempt: d.attempts, err: message, retryInMs }, retryInMs === null ? 'alert delivery failed for good' : 'alert delivery failed; retrying');
      await deliveryFailed(this.#o.pool, this.#s, d, message, { retryInMs, countAttempt: !e.rateLimited, ...(e.rateLimited ? { channelPauseMs: retryInMs ?? 1000 } : {}) });
    }
  }
}

/** The channels of every route whose matchers all hold. */
export function routeChannels(a: Alerts, labels: Record<string, string>): string[] {
  const out = new Set<string>();
  for (const r of a.routes) if (matches(r.match, labels)) for (const c of r.channels) out.add(c);
  return [...out];
}

/** The id of a firing group that inhibits `g`, or null. */
export function inhibitedBy(a: Alerts, g: { id: number; labels: Record<string, string> }, firing: Array<{ id: number; labels: Record<string, string> }>): number | null {
  for (const rule of inhibitRules(a)) {
    if (!matches(rule.target, g.labels)) continue;
    for (const src of firing) {
      if (src.id === g.id || !matches(rule.source, src.labels)) continue;
      if (rule.equal.every((l) => (src.labels[l] ?? '') === (g.labels[l] ?? '') && (src.labels[l] ?? '') !== '')) return src.id;
    }
  }
  return null;
}

function minutesIn(tz: string, at: Date): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(at);
  const h = Number(parts.find((p) => p.type === 'hour')?.value ?? 0);
  const m = Number(parts.find((p) => p.type === 'minute')?.value ?? 0);
  return h * 60 + m;
}

/** When the quiet hours that hold back `severity` end, if `now` is inside them. */
export function quietHoursEnd(a: Alerts, severity: Severity, now: Date, defaultTz: string): Date | null {
  for (const q of a.quiet_hours) {
    if (!q.severities.includes(severity)) continue;
    const cur = minutesIn(q.timezone ?? defaultTz, now);
    const [fh, fm] = q.from.split(':').map(Number) as [number, number];
    const [th, tm] = q.to.split(':').map(Number) as [number, number];
    const from = fh * 60 + fm;
    const to = th * 60 + tm;
    const inside = from <= to ? cur >= from && cur < to : cur >= from || cur < to;
    if (!inside) continue;
    const minutes = (to - cur + 1440) % 1440 || 1440;
    return new Date(now.getTime() - (now.getTime() % 60_000) + minutes * 60_000);
  }
  return null;
}

export type { Silence };
