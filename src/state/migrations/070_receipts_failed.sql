-- A run's failed and in-doubt receipts, grouped by error code on the run page and in the API (GET
-- /api/v1/runs/{id}): found through this partial index instead of a pass over the run's receipts. Only failed
-- and in-doubt receipts are in it, so the write path of delivered receipts does not maintain it.
CREATE INDEX receipts_failed ON :schema.receipts (run_id, error_code) WHERE status IN ('failed', 'in_doubt');
