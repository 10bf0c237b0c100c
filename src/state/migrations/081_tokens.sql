-- API tokens (docs/security.md): only a SHA-256 of each token is kept; the token itself is shown once.
CREATE TABLE :schema.api_tokens (
  id           text        PRIMARY KEY,          -- ssk_ + the token's first 8 characters after the prefix: safe to show
  name         text        NOT NULL,
  role         text        NOT NULL CHECK (role IN ('viewer', 'operator', 'approver', 'editor', 'auditor', 'admin')),
  token_hash   text        NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   text        NOT NULL,
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz,
  revoked_by   text
);
