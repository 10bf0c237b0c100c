-- The ledger's identity: a random id made once, when the state schema is created (or upgraded to this
-- version), and never changed. Output that lands outside the state (file batches and their manifests) carries
-- it, so that what two ledgers wrote can be told apart: a new embedded database, a switch to a server or
-- another --data-dir starts run ids at 1 again, and would otherwise name its batches like the first one.
CREATE TABLE :schema.ledger_identity (
  singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
  id         uuid        NOT NULL DEFAULT gen_random_uuid(),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO :schema.ledger_identity DEFAULT VALUES;
