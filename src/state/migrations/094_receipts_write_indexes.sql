-- The receipts are the ledger's bulk (one row per record per run) and every index on them is paid by every
-- receipt written. 030 dropped the two secondary indexes below for that reason; 092 made them again on the
-- partitioned table, and the first sync of 1M records paid them (bench:sync: delivery 56 s of 88 s).
-- Nothing reads through them:
--   receipts_mapping_key (mapping, key, id DESC): a record's history (`receipts --key`, the record timeline)
--     probes the primary key (run_id, key, period) once per run of its mapping, pruned to the partitions from
--     the run's month on (find-receipts.ts, record-timeline.ts). Each receipt landed at a random place in it.
--   receipts_run (run_id, status): the primary key leads with run_id, which is what a run's counts and pages
--     filter on; their GROUP BY op, status reads the rows anyway, and the undelivered ones have their own
--     partial index (070), kept.
DROP INDEX :schema.receipts_mapping_key;
DROP INDEX :schema.receipts_run;
