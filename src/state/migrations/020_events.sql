-- Things an operator must hear about: SLA breaches, blocked syncs (stale model, failed build), rejected
-- config reloads, forced shutdowns. Alert channels read undelivered rows later; dedup_key folds repeats of one
-- incident (same mapping, same cause) into one alert.
CREATE TABLE :schema.events (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  kind text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
  mapping text,
  run_id bigint,
  message text NOT NULL,
  details jsonb NOT NULL DEFAULT '{}'::jsonb,
  dedup_key text,
  -- channel name -> delivery time, filled by alert channels
  delivered_to_channels jsonb NOT NULL DEFAULT '{}'::jsonb,
  acked_at timestamptz,
  acked_by text
);
CREATE INDEX events_at ON :schema.events (at DESC);
CREATE INDEX events_mapping_at ON :schema.events (mapping, at DESC);
CREATE INDEX events_dedup ON :schema.events (dedup_key, at DESC) WHERE dedup_key IS NOT NULL;
CREATE INDEX events_unacked ON :schema.events (at) WHERE acked_at IS NULL;
