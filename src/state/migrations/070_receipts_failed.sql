-- A run's receipts that are not `delivered` (failed, in doubt, deferred, interrupted): the run page and the API
-- (GET /api/v1/runs/{id}) group them by op, status and error code through this partial index, and derive the
-- delivered counts from the planned ones (a finished run gives each planned record exactly one receipt), instead
-- of a pass over all the run's receipts. Delivered receipts are not in it: the write path does not maintain it
-- for them.
CREATE INDEX receipts_undelivered ON :schema.receipts (run_id, op, status) WHERE status <> 'delivered';
