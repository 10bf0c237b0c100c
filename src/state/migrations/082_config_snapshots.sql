-- The configuration as last audited (secrets masked), so the next load or reload can audit its diff.
CREATE TABLE :schema.config_snapshots (
  hash    text        PRIMARY KEY,
  content jsonb       NOT NULL,
  at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE :schema.config_current (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  hash      text    NOT NULL
);
