-- segsync's own state. :schema is replaced by the configured state schema (default segsync).

-- One row per run of a mapping: what it was asked to do, what happened, with which config and model snapshot.
CREATE TABLE :schema.runs (
  id             bigserial PRIMARY KEY,
  mapping        text        NOT NULL,
  trigger        text        NOT NULL DEFAULT 'cli',
  status         text        NOT NULL CHECK (status IN ('planning', 'running', 'succeeded', 'partial', 'failed', 'deferred', 'interrupted', 'blocked')),
  config_hash    text        NOT NULL,
  destination    text        NOT NULL,
  snapshot_at    timestamptz,
  planned        jsonb       NOT NULL DEFAULT '{}'::jsonb,   -- {create, update, remove, unchanged, dead}
  outcome        jsonb       NOT NULL DEFAULT '{}'::jsonb,   -- {delivered, failed, deferred} per op
  error          text,
  host           text,
  pid            integer,
  started_at     timestamptz NOT NULL DEFAULT now(),
  planned_at     timestamptz,
  finished_at    timestamptz
);
CREATE INDEX runs_mapping_started ON :schema.runs (mapping, started_at DESC);
CREATE INDEX runs_status ON :schema.runs (status) WHERE status IN ('planning', 'running');

-- The intent: every change a run planned, written before anything is sent.
CREATE TABLE :schema.run_items (
  run_id         bigint NOT NULL REFERENCES :schema.runs (id) ON DELETE CASCADE,
  key            text   NOT NULL,
  op             text   NOT NULL CHECK (op IN ('create', 'update', 'remove')),
  after          jsonb,
  before         jsonb,
  payload_hash   text,
  destination_id text,
  PRIMARY KEY (run_id, key)
);

-- The receipt: what the destination answered for each record of a run, written in the same transaction
-- that advances the delivered state.
CREATE TABLE :schema.receipts (
  id             bigserial PRIMARY KEY,
  run_id         bigint      NOT NULL REFERENCES :schema.runs (id) ON DELETE CASCADE,
  mapping        text        NOT NULL,
  key            text        NOT NULL,
  op             text        NOT NULL,
  status         text        NOT NULL CHECK (status IN ('delivered', 'failed', 'deferred', 'interrupted')),
  payload_hash   text,
  destination_id text,
  created        boolean,
  error_code     text,
  error_message  text,
  attempt        integer     NOT NULL DEFAULT 1,
  request_id     text,
  sent_at        timestamptz,
  recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX receipts_mapping_key ON :schema.receipts (mapping, key, id DESC);
CREATE INDEX receipts_run ON :schema.receipts (run_id, status);

-- The delivered state per mapping and key: the payload last CONFIRMED delivered. It only ever advances on a
-- destination's confirmation, so it is never ahead of the destination.
CREATE TABLE :schema.delivered (
  mapping          text NOT NULL,
  key              text NOT NULL,
  payload          jsonb,
  payload_hash     text,
  destination_id   text,
  delivered_at     timestamptz,
  last_run_id      bigint,
  removed_at       timestamptz,
  fail_count       integer NOT NULL DEFAULT 0,   -- consecutive runs in which delivery failed
  failed_hash      text,                        -- the payload hash that failed: a dead record lives again when its data changes
  last_error_code  text,
  last_error       text,
  dead_at          timestamptz,
  reconcile_status text,
  reconciled_at    timestamptz,
  PRIMARY KEY (mapping, key)
);
CREATE INDEX delivered_failing ON :schema.delivered (mapping) WHERE fail_count > 0;

-- Read-back results: what the destination really held when segsync looked.
CREATE TABLE :schema.reconciliations (
  id              bigserial PRIMARY KEY,
  mapping         text        NOT NULL,
  key             text        NOT NULL,
  status          text        NOT NULL CHECK (status IN ('verified', 'drifted', 'missing', 'unverifiable')),
  expected_hash   text,
  drifted_fields  text[],
  actual          jsonb,
  detail          text,
  checked_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reconciliations_mapping_key ON :schema.reconciliations (mapping, key, id DESC);
