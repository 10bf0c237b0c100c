-- The indexes the receipts had before they were partitioned (091 made the new table with its primary key only):
-- a record's history by key (`receipts --key`, the record debugger), a run's receipts by status (run reports,
-- counts), and the failed/deferred/in-doubt receipts of a run (the run page, 070). On the partitioned table
-- each is made on every partition, present and future.
CREATE INDEX receipts_mapping_key ON :schema.receipts (mapping, key, id DESC);
CREATE INDEX receipts_run ON :schema.receipts (run_id, status);
CREATE INDEX receipts_undelivered ON :schema.receipts (run_id, op, status) WHERE status <> 'delivered';
