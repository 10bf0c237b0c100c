-- Alerts to people (src/state/alerts.ts, src/alerts/, docs/alerts.md). Events become alert groups (one per
-- (kind, subject): the mapping, or the monitor / destination / model a group is about); a group's timers live
-- here, so a restart neither resends nor forgets, and every replica works on the same rows: a group or a
-- delivery is claimed with FOR UPDATE SKIP LOCKED, so each notification goes out exactly once.

-- Where alerting starts: events recorded before the alerts were installed are history, not news.
CREATE TABLE :schema.alert_meta (
  one          boolean     PRIMARY KEY DEFAULT true CHECK (one),
  since        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO :schema.alert_meta DEFAULT VALUES;

-- Events already folded into a group (an event id here is never folded twice, whichever replica saw it).
CREATE TABLE :schema.alert_ingested (
  event_id     bigint      PRIMARY KEY,
  group_id     bigint,
  at           timestamptz NOT NULL DEFAULT now()
);

-- One incident: firing from its first event until its condition clears (resolving: the resolve notice is
-- due), then closed. A new event after that opens a new group with the same key.
CREATE TABLE :schema.alert_groups (
  id              bigserial   PRIMARY KEY,
  group_key       text        NOT NULL,
  kind            text        NOT NULL,
  mapping         text,
  labels          jsonb       NOT NULL DEFAULT '{}'::jsonb,
  severity        text        NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
  state           text        NOT NULL DEFAULT 'firing' CHECK (state IN ('firing', 'resolving', 'closed')),
  first_at        timestamptz NOT NULL,
  last_event_at   timestamptz NOT NULL,
  last_event_id   bigint      NOT NULL,
  last_run_id     bigint,
  last_message    text        NOT NULL,
  events          integer     NOT NULL DEFAULT 1,
  -- events folded in since the last notification (0 = the next one is a repeat)
  pending         integer     NOT NULL DEFAULT 1,
  next_at         timestamptz,
  notified_at     timestamptz,
  notifications   integer     NOT NULL DEFAULT 0,
  notified_channels text[]    NOT NULL DEFAULT '{}',
  -- why the last due notification did not go out: silenced by #n, inhibited by group #n, quiet hours
  held_by         text,
  resolved_at     timestamptz,
  resolve_reason  text,
  closed_at       timestamptz
);
CREATE UNIQUE INDEX alert_groups_firing ON :schema.alert_groups (group_key) WHERE state = 'firing';
CREATE INDEX alert_groups_due ON :schema.alert_groups (next_at) WHERE state <> 'closed';

-- One notification to one channel. payload is the message as rendered (PII masked) when the group was due.
CREATE TABLE :schema.alert_deliveries (
  id           bigserial   PRIMARY KEY,
  group_id     bigint      REFERENCES :schema.alert_groups (id),
  channel      text        NOT NULL,
  action       text        NOT NULL CHECK (action IN ('trigger', 'repeat', 'resolve', 'test')),
  payload      jsonb       NOT NULL,
  status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
  attempts     integer     NOT NULL DEFAULT 0,
  next_at      timestamptz NOT NULL DEFAULT now(),
  lease_until  timestamptz,
  last_error   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  sent_at      timestamptz
);
CREATE INDEX alert_deliveries_open ON :schema.alert_deliveries (channel, id) WHERE status IN ('pending', 'sending');
CREATE INDEX alert_deliveries_group ON :schema.alert_deliveries (group_id);

-- Per channel, shared by every replica: a token bucket (tokens as of refilled_at; rate and depth from the
-- config) and the pause a Retry-After asked for.
CREATE TABLE :schema.alert_channels (
  name           text        PRIMARY KEY,
  tokens         double precision NOT NULL DEFAULT 1,
  refilled_at    timestamptz NOT NULL DEFAULT now(),
  retry_after_until timestamptz,
  last_error     text,
  last_error_at  timestamptz,
  last_sent_at   timestamptz
);

-- Silences: matchers on a group's labels, from starts_at to ends_at, by whom and why.
CREATE TABLE :schema.alert_silences (
  id           bigserial   PRIMARY KEY,
  matchers     jsonb       NOT NULL,
  starts_at    timestamptz NOT NULL DEFAULT now(),
  ends_at      timestamptz NOT NULL,
  author       text        NOT NULL,
  comment      text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expired_at   timestamptz,
  expired_by   text
);
