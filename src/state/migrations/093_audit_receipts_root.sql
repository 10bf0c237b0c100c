-- A run that built its receipts' Merkle root while it recorded them (src/audit/receipts-tree.ts) hands it over
-- with its final transition, in the outbox row's details; the audit copy of that row carries it to the sealer,
-- which checks the count against the receipts table and otherwise recomputes the root from the table.
CREATE OR REPLACE FUNCTION :schema.audit_from_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO :schema.audit_pending (at, actor_type, actor_id, action, subject, details)
  VALUES (NEW.at, NEW.actor_type, NEW.actor_id, 'run.' || NEW.to_state, 'run:' || NEW.run_id,
          jsonb_build_object('mapping', NEW.mapping, 'from', NEW.from_state, 'reason', NEW.reason)
          || CASE WHEN NEW.details ? 'receipts' THEN jsonb_build_object('receipts', NEW.details -> 'receipts') ELSE '{}'::jsonb END);
  RETURN NULL;
END $$;
