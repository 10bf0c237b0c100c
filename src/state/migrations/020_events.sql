-- Things an operator must hear about: SLA breaches, blocked syncs (stale model, failed build), rejected
-- config reloads, forced shutdowns. Alert channels read undelivered rows later; dedup_key folds repeats of one
-- incident (same mapping, same cause) into one alert.
CREATE TABLE IF NOT EXISTS events (
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
CREATE INDEX IF NOT EXISTS events_at ON events (at DESC);
CREATE INDEX IF NOT EXISTS events_mapping_at ON events (mapping, at DESC);
CREATE INDEX IF NOT EXISTS events_dedup ON events (dedup_key, at DESC) WHERE dedup_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_unacked ON events (at) WHERE acked_at IS NULL;
