import type pg from 'pg';
import type { Db } from './transition.ts';
import type { Severity } from './events.ts';

/**
 * The alert outbox (migration 060, docs/alerts.md): events folded into groups, groups' timers, deliveries per
 * channel, channels' shared send clocks, silences. Every claim is FOR UPDATE SKIP LOCKED, so replicas on one
 * database share the work and each notification is written, and sent, once.
 */

export interface AlertEvent {
  id: number;
  at: Date;
  kind: string;
  severity: Severity;
  mapping: string | null;
  runId: number | null;
  message: string;
  details: Record<string, unknown>;
  dedupKey: string | null;
}

export interface GroupSpec {
  key: string;
  kind: string;
  mapping: string | null;
  labels: Record<string, string>;
  severity: Severity;
  message: string;
  runId: number | null;
}

export interface AlertGroup {
  id: number;
  key: string;
  kind: string;
  mapping: string | null;
  labels: Record<string, string>;
  severity: Severity;
  state: 'firing' | 'resolving' | 'closed';
  firstAt: Date;
  lastEventAt: Date;
  lastRunId: number | null;
  lastMessage: string;
  events: number;
  pending: number;
  nextAt: Date | null;
  notifiedAt: Date | null;
  notifications: number;
  notifiedChannels: string[];
  heldBy: string | null;
  resolvedAt: Date | null;
  resolveReason: string | null;
}

const SEVERITY_RANK = "CASE $S WHEN 'critical' THEN 4 WHEN 'error' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END";
const rank = (col: string) => SEVERITY_RANK.replace('$S', col);

function groupRow(r: Record<string, unknown>): AlertGroup {
  return {
    id: Number(r.id), key: r.group_key as string, kind: r.kind as string, mapping: (r.mapping as string | null) ?? null,
    labels: r.labels as Record<string, string>, severity: r.severity as Severity, state: r.state as AlertGroup['state'],
    firstAt: r.first_at as Date, lastEventAt: r.last_event_at as Date, lastRunId: r.last_run_id == null ? null : Number(r.last_run_id),
    lastMessage: r.last_message as string, events: Number(r.events), pending: Number(r.pending), nextAt: (r.next_at as Date | null) ?? null,
    notifiedAt: (r.notified_at as Date | null) ?? null, notifications: Number(r.notifications), notifiedChannels: (r.notified_channels as string[]) ?? [],
    heldBy: (r.held_by as string | null) ?? null, resolvedAt: (r.resolved_at as Date | null) ?? null, resolveReason: (r.resolve_reason as string | null) ?? null,
  };
}

/**
 * Events not folded yet (since alerting was installed, at most a day back), claimed for this transaction:
 * locked with SKIP LOCKED (another replica takes others), and marked in alert_ingested in the same statement.
 * The mark is what makes it once: a replica whose snapshot still missed another's committed mark hits the
 * primary key and gets nothing back. Fold them, then set their group with markIngested, in this transaction.
 */
export async function claimNewEvents(client: pg.ClientBase, schema: string, limit = 200): Promise<AlertEvent[]> {
  const { rows } = await client.query(
    `WITH candidates AS (
       SELECT e.id FROM ${schema}.events e
        WHERE e.at >= greatest((SELECT since FROM ${schema}.alert_meta), now() - interval '1 day')
          AND NOT EXISTS (SELECT 1 FROM ${schema}.alert_ingested i WHERE i.event_id = e.id)
        ORDER BY e.id LIMIT $1 FOR UPDATE OF e SKIP LOCKED),
     claimed AS (
       INSERT INTO ${schema}.alert_ingested (event_id) SELECT id FROM candidates ON CONFLICT DO NOTHING RETURNING event_id)
     SELECT e.id, e.at, e.kind, e.severity, e.mapping, e.run_id, e.message, e.details, e.dedup_key
       FROM ${schema}.events e JOIN claimed c ON c.event_id = e.id ORDER BY e.id`, [limit]);
  return rows.map((r) => ({
    id: Number(r.id), at: r.at, kind: r.kind, severity: r.severity, mapping: r.mapping, runId: r.run_id == null ? null : Number(r.run_id),
    message: r.message, details: r.details ?? {}, dedupKey: r.dedup_key,
  }));
}

export async function markIngested(client: pg.ClientBase, schema: string, eventId: number, groupId: number | null): Promise<void> {
  await client.query(`UPDATE ${schema}.alert_ingested SET group_id = $2 WHERE event_id = $1`, [eventId, groupId]);
}

/** Forgets which events were folded once they are too old to be looked at again (claimNewEvents reads a day back). */
export async function pruneIngested(db: Db, schema: string): Promise<number> {
  const { rowCount } = await db.query(`DELETE FROM ${schema}.alert_ingested WHERE at < now() - interval '2 days'`);
  return rowCount ?? 0;
}

/**
 * Folds one event into the firing group of its key, or opens one (first notification after group_wait). A
 * group already notified is due again group_interval after its last notification, not sooner.
 */
export async function foldEvent(client: pg.ClientBase, schema: string, ev: AlertEvent, g: GroupSpec, timers: { groupWaitMs: number; groupIntervalMs: number }): Promise<number> {
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO ${schema}.alert_groups AS g (group_key, kind, mapping, labels, severity, first_at, last_event_at, last_event_id, last_run_id, last_message, next_at)
     VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, greatest($6::timestamptz, now()) + $10 * interval '1 millisecond')
     ON CONFLICT (group_key) WHERE state = 'firing' DO UPDATE SET
       severity = CASE WHEN ${rank('EXCLUDED.severity')} > ${rank('g.severity')} THEN EXCLUDED.severity ELSE g.severity END,
       -- the severity label is the group's (its highest), so routes and silences see what the message says
       labels = g.labels || EXCLUDED.labels || jsonb_build_object('severity', CASE WHEN ${rank('EXCLUDED.severity')} > ${rank('g.severity')} THEN EXCLUDED.severity ELSE g.severity END),
       last_event_at = greatest(g.last_event_at, EXCLUDED.last_event_at),
       last_event_id = greatest(g.last_event_id, EXCLUDED.last_event_id),
       last_run_id = coalesce(EXCLUDED.last_run_id, g.last_run_id),
       last_message = EXCLUDED.last_message,
       events = g.events + 1, pending = g.pending + 1,
       next_at = CASE WHEN g.notified_at IS NULL THEN g.next_at
                      ELSE least(g.next_at, greatest(g.notified_at + $11 * interval '1 millisecond', now())) END
     RETURNING id`,
    [g.key, g.kind, g.mapping, JSON.stringify(g.labels), g.severity, ev.at, ev.id, g.runId, g.message, timers.groupWaitMs, timers.groupIntervalMs]);
  return Number(rows[0]!.id);
}

/** The firing group of `key` clears (its resolve notice, if it was ever notified, is due now). */
export async function resolveByKey(client: Db, schema: string, key: string, at: Date, reason: string): Promise<number | null> {
  const { rows } = await client.query<{ id: string }>(
    `UPDATE ${schema}.alert_groups SET state = 'resolving', resolved_at = now(), resolve_reason = $3, next_at = now()
      WHERE group_key = $1 AND state = 'firing' AND last_event_at <= $2 RETURNING id`, [key, at, reason]);
  return rows[0] ? Number(rows[0].id) : null;
}

/** Firing groups, locked (the clear check); another replica checking them skips them. */
export async function claimFiringGroups(client: pg.ClientBase, schema: string, limit = 500): Promise<AlertGroup[]> {
  const { rows } = await client.query(`SELECT * FROM ${schema}.alert_groups WHERE state = 'firing' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, [limit]);
  return rows.map(groupRow);
}

/** Whether a run of one of `mappings` succeeded that started after `after` (and is later than run `afterRun`). */
export async function succeededSince(client: Db, schema: string, mappings: string[], after: Date, afterRun: number | null): Promise<number | null> {
  if (!mappings.length) return null;
  const { rows } = await client.query<{ id: string }>(
    `SELECT id FROM ${schema}.runs WHERE mapping = ANY($1) AND status = 'succeeded' AND started_at > $2 AND id > $3 ORDER BY id LIMIT 1`,
    [mappings, after, afterRun ?? 0]);
  return rows[0] ? Number(rows[0].id) : null;
}

/** The state of one run (null: no such run). */
export async function runState(client: Db, schema: string, runId: number): Promise<string | null> {
  const { rows } = await client.query<{ status: string }>(`SELECT status FROM ${schema}.runs WHERE id = $1`, [runId]);
  return rows[0]?.status ?? null;
}

export async function markResolving(client: Db, schema: string, groupId: number, reason: string): Promise<void> {
  await client.query(`UPDATE ${schema}.alert_groups SET state = 'resolving', resolved_at = now(), resolve_reason = $2, next_at = now() WHERE id = $1 AND state = 'firing'`, [groupId, reason]);
}

/** Groups whose timer is due, locked: whoever holds one writes its notification; others skip it. */
export async function claimDueGroups(client: pg.ClientBase, schema: string, limit = 50): Promise<AlertGroup[]> {
  const { rows } = await client.query(
    `SELECT * FROM ${schema}.alert_groups WHERE state <> 'closed' AND next_at <= now() ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED`, [limit]);
  return rows.map(groupRow);
}

export async function firingGroupsLabels(client: Db, schema: string): Promise<Array<{ id: number; labels: Record<string, string> }>> {
  const { rows } = await client.query(`SELECT id, labels FROM ${schema}.alert_groups WHERE state = 'firing'`);
  return rows.map((r) => ({ id: Number(r.id), labels: r.labels }));
}

/** Writes a group's notification: one delivery per channel, and its next timer (repeatMs on the database's clock, which every replica shares). */
export async function recordNotification(client: pg.ClientBase, schema: string, g: AlertGroup, action: 'trigger' | 'repeat' | 'resolve', channels: string[], payload: object, repeatMs: number | null): Promise<void> {
  for (const ch of channels) {
    await client.query(`INSERT INTO ${schema}.alert_deliveries (group_id, channel, action, payload) VALUES ($1, $2, $3, $4)`, [g.id, ch, action, JSON.stringify(payload)]);
  }
  if (action === 'resolve') {
    await client.query(`UPDATE ${schema}.alert_groups SET state = 'closed', closed_at = now(), next_at = NULL, held_by = NULL WHERE id = $1`, [g.id]);
    return;
  }
  await client.query(
    `UPDATE ${schema}.alert_groups SET notified_at = now(), notifications = notifications + 1, pending = 0, next_at = now() + $2 * interval '1 millisecond', held_by = NULL,
            notified_channels = ARRAY(SELECT DISTINCT unnest(notified_channels || $3::text[]))
      WHERE id = $1`, [g.id, repeatMs, channels]);
}

/** A due group that does not go out now (silenced, inhibited, quiet hours, no route): looked at again at `nextAt`. */
export async function holdGroup(client: Db, schema: string, groupId: number, nextAt: Date, heldBy: string): Promise<void> {
  await client.query(`UPDATE ${schema}.alert_groups SET next_at = $2, held_by = $3 WHERE id = $1`, [groupId, nextAt, heldBy]);
}

export async function closeGroup(client: Db, schema: string, groupId: number, reason?: string): Promise<void> {
  await client.query(`UPDATE ${schema}.alert_groups SET state = 'closed', closed_at = now(), next_at = NULL, resolve_reason = coalesce($2, resolve_reason) WHERE id = $1`, [groupId, reason ?? null]);
}

// ---- deliveries ----

export interface Delivery {
  id: number;
  groupId: number | null;
  channel: string;
  action: 'trigger' | 'repeat' | 'resolve' | 'test';
  payload: Record<string, unknown>;
  status: 'pending' | 'sending' | 'sent' | 'failed';
  attempts: number;
  nextAt: Date;
  lastError: string | null;
  createdAt: Date;
  sentAt: Date | null;
}

function deliveryRow(r: Record<string, unknown>): Delivery {
  return {
    id: Number(r.id), groupId: r.group_id == null ? null : Number(r.group_id), channel: r.channel as string, action: r.action as Delivery['action'],
    payload: r.payload as Record<string, unknown>, status: r.status as Delivery['status'], attempts: Number(r.attempts), nextAt: r.next_at as Date,
    lastError: (r.last_error as string | null) ?? null, createdAt: r.created_at as Date, sentAt: (r.sent_at as Date | null) ?? null,
  };
}

/**
 * The next delivery a channel may send, claimed with a lease, if the channel's token bucket (shared by every
 * replica: `rate` tokens a second, at most `burst`) has a token and no Retry-After pause is running.
 * Deliveries of one group to one channel go in order (a resolve never overtakes its trigger). A lease that
 * ran out (the sender died mid-request) is claimed again.
 */
export async function claimDelivery(pool: pg.Pool, schema: string, channel: string, bucket: { rate: number; burst: number }, leaseMs: number): Promise<Delivery | null> {
  await pool.query(`INSERT INTO ${schema}.alert_channels (name, tokens) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [channel, bucket.burst]);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const ch = await client.query<{ tokens: number; elapsed: number }>(
      `SELECT tokens, extract(epoch FROM now() - refilled_at)::float8 AS elapsed FROM ${schema}.alert_channels
        WHERE name = $1 AND (retry_after_until IS NULL OR retry_after_until <= now()) FOR UPDATE SKIP LOCKED`, [channel]);
    if (!ch.rows.length) {
      await client.query('COMMIT');
      return null;
    }
    const tokens = Math.min(bucket.burst, ch.rows[0]!.tokens + Math.max(0, ch.rows[0]!.elapsed) * bucket.rate);
    const refill = (left: number) => client.query(`UPDATE ${schema}.alert_channels SET tokens = $2, refilled_at = now() WHERE name = $1`, [channel, left]);
    if (tokens < 1) {
      await refill(tokens);
      await client.query('COMMIT');
      return null;
    }
    const { rows } = await client.query(
      `SELECT d.* FROM ${schema}.alert_deliveries d
        WHERE d.channel = $1 AND ((d.status = 'pending' AND d.next_at <= now()) OR (d.status = 'sending' AND d.lease_until < now()))
          AND NOT EXISTS (SELECT 1 FROM ${schema}.alert_deliveries e WHERE e.group_id = d.group_id AND e.channel = d.channel AND e.id < d.id AND e.status IN ('pending', 'sending'))
        ORDER BY d.id LIMIT 1 FOR UPDATE SKIP LOCKED`, [channel]);
    if (!rows.length) {
      await refill(tokens);
      await client.query('COMMIT');
      return null;
    }
    const { rows: [claimed] } = await client.query(
      `UPDATE ${schema}.alert_deliveries SET status = 'sending', attempts = attempts + 1, lease_until = now() + $2 * interval '1 millisecond' WHERE id = $1 RETURNING *`, [rows[0].id, leaseMs]);
    await refill(tokens - 1);
    await client.query('COMMIT');
    return deliveryRow(claimed);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Deliveries waiting for a channel that is no longer configured: failed, visibly, rather than pending forever. */
export async function failOrphanDeliveries(db: Db, schema: string, channels: string[]): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE ${schema}.alert_deliveries SET status = 'failed', lease_until = NULL, last_error = 'channel ' || channel || ' is no longer configured'
      WHERE status IN ('pending', 'sending') AND (status = 'pending' OR lease_until < now()) AND NOT (channel = ANY($1))`, [channels]);
  return rowCount ?? 0;
}

export async function deliverySent(db: Db, schema: string, id: number): Promise<void> {
  await db.query(`UPDATE ${schema}.alert_deliveries SET status = 'sent', sent_at = now(), lease_until = NULL, last_error = NULL WHERE id = $1`, [id]);
  await db.query(`UPDATE ${schema}.alert_channels SET last_sent_at = now() WHERE name = (SELECT channel FROM ${schema}.alert_deliveries WHERE id = $1)`, [id]);
}

/**
 * A failed attempt: tried again after `retryInMs`, or marked failed for good. A rate limit (`countAttempt`
 * false) does not use up an attempt, and pushes the whole channel's clock back for every replica.
 */
export async function deliveryFailed(db: Db, schema: string, d: Delivery, error: string, opts: { retryInMs: number | null; countAttempt: boolean; channelPauseMs?: number }): Promise<void> {
  if (opts.retryInMs === null) {
    await db.query(`UPDATE ${schema}.alert_deliveries SET status = 'failed', lease_until = NULL, last_error = $2 WHERE id = $1`, [d.id, error]);
  } else {
    await db.query(`UPDATE ${schema}.alert_deliveries SET status = 'pending', lease_until = NULL, last_error = $2, next_at = now() + $3 * interval '1 millisecond', attempts = attempts - $4 WHERE id = $1`,
      [d.id, error, opts.retryInMs, opts.countAttempt ? 0 : 1]);
  }
  await db.query(
    `UPDATE ${schema}.alert_channels SET last_error = $2, last_error_at = now(),
            retry_after_until = CASE WHEN $3::bigint IS NULL THEN retry_after_until ELSE now() + $3 * interval '1 millisecond' END
      WHERE name = $1`, [d.channel, error, opts.channelPauseMs ?? null]);
}

/** A test message: a delivery without a group, sent by the dispatcher (or directly by `segsync alerts test`). */
export async function insertTestDelivery(db: Db, schema: string, channel: string, payload: object): Promise<number> {
  const { rows } = await db.query<{ id: string }>(`INSERT INTO ${schema}.alert_deliveries (channel, action, payload) VALUES ($1, 'test', $2) RETURNING id`, [channel, JSON.stringify(payload)]);
  return Number(rows[0]!.id);
}

// ---- reading (segsync alerts) ----

export interface GroupWithDeliveries extends AlertGroup {
  deliveries: Array<{ id: number; channel: string; action: string; status: string; attempts: number; lastError: string | null; sentAt: Date | null; nextAt: Date }>;
}

/** Open groups (and those closed in the last `closedWithinMs`), newest first, with their deliveries. */
export async function listGroups(db: Db, schema: string, opts: { closedWithinMs?: number; limit?: number } = {}): Promise<GroupWithDeliveries[]> {
  const { rows } = await db.query(
    `SELECT * FROM ${schema}.alert_groups WHERE state <> 'closed' OR closed_at > now() - $1 * interval '1 millisecond' ORDER BY id DESC LIMIT $2`,
    [opts.closedWithinMs ?? 0, opts.limit ?? 200]);
  const groups = rows.map(groupRow);
  if (!groups.length) return [];
  const { rows: ds } = await db.query(`SELECT * FROM ${schema}.alert_deliveries WHERE group_id = ANY($1) ORDER BY id`, [groups.map((g) => g.id)]);
  return groups.map((g) => ({
    ...g,
    deliveries: ds.filter((d) => Number(d.group_id) === g.id).map(deliveryRow)
      .map((d) => ({ id: d.id, channel: d.channel, action: d.action, status: d.status, attempts: d.attempts, lastError: d.lastError, sentAt: d.sentAt, nextAt: d.nextAt })),
  }));
}

/** Deliveries in a state (failed ones for `segsync alerts`, tests). */
export async function listDeliveries(db: Db, schema: string, opts: { status?: Delivery['status']; channel?: string } = {}): Promise<Delivery[]> {
  const { rows } = await db.query(
    `SELECT * FROM ${schema}.alert_deliveries WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR channel = $2) ORDER BY id`,
    [opts.status ?? null, opts.channel ?? null]);
  return rows.map(deliveryRow);
}

// ---- silences ----

export interface Silence {
  id: number;
  matchers: string[];
  startsAt: Date;
  endsAt: Date;
  author: string;
  comment: string;
  createdAt: Date;
  expiredAt: Date | null;
  expiredBy: string | null;
}

function silenceRow(r: Record<string, unknown>): Silence {
  return {
    id: Number(r.id), matchers: r.matchers as string[], startsAt: r.starts_at as Date, endsAt: r.ends_at as Date, author: r.author as string,
    comment: r.comment as string, createdAt: r.created_at as Date, expiredAt: (r.expired_at as Date | null) ?? null, expiredBy: (r.expired_by as string | null) ?? null,
  };
}

export async function addSilence(db: Db, schema: string, s: { matchers: string[]; forMs: number; author: string; comment: string }): Promise<Silence> {
  const { rows } = await db.query(
    `INSERT INTO ${schema}.alert_silences (matchers, ends_at, author, comment) VALUES ($1, now() + $2 * interval '1 millisecond', $3, $4) RETURNING *`,
    [JSON.stringify(s.matchers), s.forMs, s.author, s.comment]);
  return silenceRow(rows[0]);
}

/** Silences in force now (or all of them). */
export async function listSilences(db: Db, schema: string, opts: { all?: boolean } = {}): Promise<Silence[]> {
  const { rows } = await db.query(
    `SELECT * FROM ${schema}.alert_silences WHERE $1 OR (expired_at IS NULL AND starts_at <= now() AND ends_at > now()) ORDER BY id`, [opts.all === true]);
  return rows.map(silenceRow);
}

/** Ends a silence now; false when it does not exist or already ended. */
export async function expireSilence(db: Db, schema: string, id: number, by: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE ${schema}.alert_silences SET expired_at = now(), expired_by = $2 WHERE id = $1 AND expired_at IS NULL AND ends_at > now()`, [id, by]);
  return (rowCount ?? 0) > 0;
}
