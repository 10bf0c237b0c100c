-- The run as a persisted state machine (src/state/machine.ts holds the states and the allowed transitions;
-- docs/sync.md has the diagram generated from it). Every change of a run's or its items' state goes through
-- one write path (src/state/transition.ts), which appends a row to the outbox in the same statement.

-- Runs: the states of the machine. 'running' was the old name of 'delivering'.
ALTER TABLE :schema.runs DROP CONSTRAINT runs_status_check;
UPDATE :schema.runs SET status = 'delivering' WHERE status = 'running';
ALTER TABLE :schema.runs ADD CONSTRAINT runs_status_check CHECK (status IN (
  'planning', 'planned', 'held', 'approved', 'rejected', 'delivering',
  'succeeded', 'partial', 'failed', 'deferred', 'interrupted', 'blocked', 'cancelled'));
DROP INDEX :schema.runs_status;
-- Runs not finished: what recovery after a crash looks at (held and approved runs wait for a person).
CREATE INDEX runs_open ON :schema.runs (mapping) WHERE status IN ('planning', 'planned', 'held', 'approved', 'delivering');

-- Who made the run happen replaces the free-text trigger: cli:<os user>@<host>, daemon:<schedule|catch-up>, ...
ALTER TABLE :schema.runs ADD COLUMN actor_type text, ADD COLUMN actor_id text, ADD COLUMN status_reason text,
  ADD COLUMN status_at timestamptz;
UPDATE :schema.runs SET actor_type = CASE WHEN trigger LIKE 'daemon%' THEN 'daemon' ELSE 'cli' END,
  actor_id = CASE WHEN trigger LIKE 'daemon:%' THEN substr(trigger, 8) ELSE trigger END,
  status_at = coalesce(finished_at, planned_at, started_at);
ALTER TABLE :schema.runs ALTER COLUMN actor_type SET NOT NULL, ALTER COLUMN actor_id SET NOT NULL,
  ALTER COLUMN status_at SET NOT NULL, ALTER COLUMN status_at SET DEFAULT now(),
  ADD CONSTRAINT runs_actor_type_check CHECK (actor_type IN ('cli', 'daemon', 'api', 'system'));
ALTER TABLE :schema.runs DROP COLUMN trigger;
-- The guardrails' figures and verdicts (src/sync/guardrails.ts): later runs learn their baseline from them,
-- and a held run carries its evidence here.
ALTER TABLE :schema.runs ADD COLUMN guardrails jsonb;

-- Items: "sending" is recorded per batch before its request leaves. A batch is a contiguous key range of the
-- run's planned items. An item's state is derived (run_item_states): its receipt's status once it has one,
-- else 'sending' inside a batch whose answer was not recorded, else 'planned'. After a crash, a batch still
-- 'sending' is the set of records whose fate is unknown: they become in_doubt, never merely "not sent".
CREATE TABLE :schema.run_batches (
  run_id      bigint      NOT NULL,
  first_key   text        NOT NULL,
  last_key    text        NOT NULL,
  size        integer     NOT NULL,
  status      text        NOT NULL CHECK (status IN ('sending', 'answered')),
  sent_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  answered_at timestamptz,
  PRIMARY KEY (run_id, first_key)
);

-- A receipt may say in_doubt: the request left and no answer came back.
ALTER TABLE :schema.receipts DROP CONSTRAINT receipts_status_check;
ALTER TABLE :schema.receipts ADD CONSTRAINT receipts_status_check CHECK (status IN ('delivered', 'failed', 'deferred', 'interrupted', 'in_doubt'));

-- The run whose request for this key got no answer: the next run resends it (counted as a resend) and an in
-- doubt never counts towards dead_after. Cleared by the next confirmation or failure.
ALTER TABLE :schema.delivered ADD COLUMN in_doubt_run bigint;
-- Planned because an earlier run left it in doubt; and how many earlier runs got a definite failure answer for
-- this very change (same payload): the change's attempt number counts on from there, so a receiver's cache of
-- a failure is never replayed for a new attempt, while an in-doubt resend keeps its attempt (and its ids).
ALTER TABLE :schema.run_items ADD COLUMN resend boolean NOT NULL DEFAULT false,
  ADD COLUMN prior_failures integer NOT NULL DEFAULT 0;

CREATE VIEW :schema.run_item_states AS
  SELECT ri.run_id, ri.key, ri.op,
         coalesce(r.status, CASE WHEN b.status = 'sending' THEN 'sending' ELSE 'planned' END) AS status,
         r.error_code, r.recorded_at
  FROM :schema.run_items ri
  LEFT JOIN :schema.receipts r ON r.run_id = ri.run_id AND r.key = ri.key
  LEFT JOIN LATERAL (SELECT status FROM :schema.run_batches b WHERE b.run_id = ri.run_id AND ri.key BETWEEN b.first_key AND b.last_key LIMIT 1) b ON true;

-- The outbox: one row per transition of a run or a batch of its items, written in the same statement as the
-- transition. Alerts, metrics and the API read it in id order.
CREATE TABLE :schema.outbox (
  id          bigserial   PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  subject     text        NOT NULL CHECK (subject IN ('run', 'items', 'followups')),
  run_id      bigint,
  mapping     text        NOT NULL,
  from_state  text,
  to_state    text        NOT NULL,
  actor_type  text        NOT NULL,
  actor_id    text        NOT NULL,
  reason      text,
  details     jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX outbox_run ON :schema.outbox (run_id);

-- Follow-up work of a delivered record on other objects (the segment on a contact's open tickets or Cases):
-- its own outcome and pending state. 'pending' is written in the same transaction that confirms the record,
-- so a crash or a spent budget between the two never loses it; the next run applies what is pending without
-- resending the record.
CREATE TABLE :schema.followups (
  mapping         text        NOT NULL,
  key             text        NOT NULL,
  kind            text        NOT NULL,
  status          text        NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
  attempts        integer     NOT NULL DEFAULT 0,
  last_run_id     bigint,
  last_error_code text,
  last_error      text,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (mapping, key, kind)
);
CREATE INDEX followups_pending ON :schema.followups (mapping, kind, key) WHERE status = 'pending';

-- Up to when follow-up objects (tickets, Cases) changed in the destination have been swept per mapping.
CREATE TABLE :schema.followup_sweeps (
  mapping text        NOT NULL,
  kind    text        NOT NULL,
  since   timestamptz NOT NULL,
  PRIMARY KEY (mapping, kind)
);
