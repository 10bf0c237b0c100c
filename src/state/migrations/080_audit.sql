-- The audit trail (docs/security.md): who did what, tamper-evident. Actions arrive in audit_pending (written by
-- audit() and, beside the one write path of run states, by a trigger on the outbox); the sealer moves them
-- into audit in one order, under the lock on audit_head, giving each its place in the hash chain. Several
-- writers (daemon replicas, a CLI) never fork the chain: only the holder of the head row appends.
CREATE TABLE :schema.audit_pending (
  id         bigserial   PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_type text        NOT NULL,
  actor_id   text        NOT NULL,
  action     text        NOT NULL,
  subject    text,
  details    jsonb       NOT NULL DEFAULT '{}'::jsonb
);

-- One row per action, in chain order. entry is the canonical JSON (RFC 8785) of the leaf; keys in it are
-- keyed pseudonyms and payloads hashes, so nothing here ever has to change when a person is erased.
CREATE TABLE :schema.audit (
  seq        bigint      PRIMARY KEY,
  at         timestamptz NOT NULL,
  actor_type text        NOT NULL,
  actor_id   text        NOT NULL,
  action     text        NOT NULL,
  subject    text,
  entry      text        NOT NULL,
  leaf_hash  text        NOT NULL,  -- hex SHA-256(0x00 || entry)
  chain_hash text        NOT NULL   -- hex SHA-256(0x01 || previous chain_hash || leaf_hash)
);
CREATE INDEX audit_subject ON :schema.audit (subject, seq);
CREATE INDEX audit_action ON :schema.audit (action, seq);

CREATE TABLE :schema.audit_head (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  seq        bigint  NOT NULL DEFAULT 0,
  chain_hash text    NOT NULL DEFAULT repeat('0', 64)
);
INSERT INTO :schema.audit_head DEFAULT VALUES;

-- Signed checkpoints of the chain (C2SP tlog-checkpoint notes, Ed25519), also exportable to a file.
CREATE TABLE :schema.audit_checkpoints (
  seq        bigint      PRIMARY KEY,
  chain_hash text        NOT NULL,
  note       text        NOT NULL,
  signed_at  timestamptz NOT NULL DEFAULT now()
);

-- Append-only: UPDATE, DELETE and TRUNCATE are refused (verify still catches what a superuser does with the
-- trigger disabled).
CREATE FUNCTION :schema.audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON :schema.audit FOR EACH ROW EXECUTE FUNCTION :schema.audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON :schema.audit FOR EACH STATEMENT EXECUTE FUNCTION :schema.audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON :schema.audit_checkpoints FOR EACH ROW EXECUTE FUNCTION :schema.audit_refuse_change();

-- Every transition of a run (triggered, planned, held, approved, rejected, retried, delivered ...) is audited
-- beside the one write path: the outbox row it appends is copied here in the same statement, with its actor.
CREATE FUNCTION :schema.audit_from_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO :schema.audit_pending (at, actor_type, actor_id, action, subject, details)
  VALUES (NEW.at, NEW.actor_type, NEW.actor_id, 'run.' || NEW.to_state, 'run:' || NEW.run_id,
          jsonb_build_object('mapping', NEW.mapping, 'from', NEW.from_state, 'reason', NEW.reason));
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_audit AFTER INSERT ON :schema.outbox FOR EACH ROW WHEN (NEW.subject = 'run')
  EXECUTE FUNCTION :schema.audit_from_outbox();
