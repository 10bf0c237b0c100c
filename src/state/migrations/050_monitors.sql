-- Data-quality monitors (src/sync/monitors.ts, docs/monitors.md): every evaluation of a monitor is a row, with
-- what was measured against what. The latest row of a monitor is its state; a critical one blocks the
-- mappings that wait for the models until the monitor recovers or a person acknowledges it.
CREATE TABLE :schema.monitor_results (
  id          bigserial   PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  monitor     text        NOT NULL,
  type        text        NOT NULL,
  severity    text        NOT NULL CHECK (severity IN ('ok', 'warning', 'critical')),
  value       double precision,
  baseline    double precision,
  threshold   double precision,
  detail      text        NOT NULL,
  evidence    jsonb       NOT NULL DEFAULT '{}'::jsonb,
  acked_at    timestamptz,
  acked_by    text,
  ack_reason  text
);
CREATE INDEX monitor_results_latest ON :schema.monitor_results (monitor, id DESC);
