-- Erasure (segsync forget, docs/security.md). The suppression list is the minimum kept to honour an erasure (like
-- HubSpot's blocklist): the key, so the planner never sends the person again. Everything else about them in
-- the ledger is nulled; hashes stay, so the audit trail and receipts' Merkle roots still verify.
CREATE TABLE :schema.suppressions (
  key        text        PRIMARY KEY,
  pseudonym  text        NOT NULL,
  erasure_id bigint,
  at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE :schema.erasures (
  id           bigserial   PRIMARY KEY,
  pseudonym    text        NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT now(),
  requested_by text        NOT NULL,
  reason       text        NOT NULL,
  status       text        NOT NULL CHECK (status IN ('open', 'done')),
  due_at       timestamptz NOT NULL,
  finished_at  timestamptz
);
CREATE INDEX erasures_open ON :schema.erasures (due_at) WHERE status = 'open';

-- One row per destination of each mapping: what it answered (request ids for the controller's records).
CREATE TABLE :schema.erasure_steps (
  erasure_id  bigint      NOT NULL,
  mapping     text        NOT NULL,
  connection  text        NOT NULL,
  type        text        NOT NULL,
  status      text        NOT NULL CHECK (status IN ('done', 'failed')),
  request_id  text,
  detail      text,
  attempts    integer     NOT NULL DEFAULT 1,
  at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (erasure_id, mapping)
);
