-- Receipts are the ledger's bulk (a row per record per run: about 36M a year for 100k changes a day), so they
-- are partitioned by month, and old months leave by dropping their partition (O(1), no DELETE, no bloat):
-- src/state/receipt-partitions.ts keeps the current and next month's partitions and drops the months past
-- state.receipts_retention_months (docs/sync.md). A receipt's month (`period`) is the month (UTC) its run
-- started, so every receipt of a run lands in one partition and (run_id, key) still identifies one receipt;
-- the primary key must hold the partition key, hence (run_id, key, period). Writers give the run's period;
-- the default (this month) is for any other writer. run_id and key stay on every receipt.
--
-- An existing ledger is converted here: the unpartitioned table's rows are copied into the months of their
-- runs (one pass, at upgrade), then it is dropped.
-- run_item_states (040) reads receipts: made again below over the new table.
DROP VIEW :schema.run_item_states;
ALTER TABLE :schema.receipts RENAME TO receipts_unpartitioned;
ALTER INDEX :schema.receipts_pkey RENAME TO receipts_unpartitioned_pkey;
ALTER TABLE :schema.receipts_unpartitioned RENAME CONSTRAINT receipts_status_check TO receipts_unpartitioned_status_check;
CREATE TABLE :schema.receipts (
  LIKE :schema.receipts_unpartitioned INCLUDING DEFAULTS,
  period date NOT NULL DEFAULT (date_trunc('month', now() AT TIME ZONE 'UTC'))::date,
  CONSTRAINT receipts_status_check CHECK (status IN ('delivered', 'failed', 'deferred', 'interrupted', 'in_doubt'))
) PARTITION BY RANGE (period);
ALTER SEQUENCE :schema.receipts_id_seq OWNED BY :schema.receipts.id;
ALTER TABLE :schema.receipts ADD PRIMARY KEY (run_id, key, period);
-- Rows of a month without its partition (a writer that ran before the month's partition was made) land here;
-- the month's partition is then made when it is free of them (see receipts_partition).
CREATE TABLE :schema.receipts_default PARTITION OF :schema.receipts DEFAULT;

-- The partition of the month holding `at`, made when missing; false when it could not be (rows of that month
-- already in the default partition).
CREATE FUNCTION :schema.receipts_partition(at timestamptz) RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
  first date := (date_trunc('month', at AT TIME ZONE 'UTC'))::date;
  part text := 'receipts_p' || to_char(first, 'YYYYMM');
BEGIN
  IF to_regclass(format('%I.%I', ':schema', part)) IS NOT NULL THEN RETURN true; END IF;
  BEGIN
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.receipts FOR VALUES FROM (%L) TO (%L)',
                   ':schema', part, ':schema', first, (first + interval '1 month')::date);
  EXCEPTION WHEN check_violation THEN
    RETURN false;
  END;
  RETURN true;
END
$fn$;

SELECT :schema.receipts_partition(m) FROM (
  SELECT DISTINCT date_trunc('month', coalesce(ru.started_at, r.recorded_at) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m
  FROM :schema.receipts_unpartitioned r LEFT JOIN :schema.runs ru ON ru.id = r.run_id
  UNION SELECT now() UNION SELECT now() + interval '1 month'
) months;
INSERT INTO :schema.receipts
SELECT r.*, (date_trunc('month', coalesce(ru.started_at, r.recorded_at) AT TIME ZONE 'UTC'))::date
FROM :schema.receipts_unpartitioned r LEFT JOIN :schema.runs ru ON ru.id = r.run_id;
DROP TABLE :schema.receipts_unpartitioned;

CREATE VIEW :schema.run_item_states AS
  SELECT ri.run_id, ri.key, ri.op,
         coalesce(r.status, CASE WHEN b.status = 'sending' THEN 'sending' ELSE 'planned' END) AS status,
         r.error_code, r.recorded_at
  FROM :schema.run_items ri
  LEFT JOIN :schema.receipts r ON r.run_id = ri.run_id AND r.key = ri.key
  LEFT JOIN LATERAL (SELECT status FROM :schema.run_batches b WHERE b.run_id = ri.run_id AND ri.key BETWEEN b.first_key AND b.last_key LIMIT 1) b ON true;
