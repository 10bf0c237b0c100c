-- The ledger's write path, measured at 1M records (docs/benchmarks.md, bench:sync): each record costs a receipt
-- and a delivered-state row, and most of that cost was index maintenance.

-- A run gives each planned record exactly one final receipt, so (run_id, key) identifies it: it becomes the key,
-- and the ledger now refuses a second receipt for one record in one run. Receipts are appended in key order
-- within a run, so this index grows at its right edge. The index on (mapping, key) is dropped: every receipt
-- landed at a random place in it (most of a receipt's cost). A record's history is found through its
-- mapping's runs instead (one probe of this key per run; see `segsync receipts --key`).
ALTER TABLE :schema.receipts DROP CONSTRAINT receipts_pkey;
DROP INDEX :schema.receipts_mapping_key;
DROP INDEX :schema.receipts_run;
ALTER TABLE :schema.receipts ADD PRIMARY KEY (run_id, key);

-- Whether the delivered state had a row for the key when the run was planned. A confirmed create of a key
-- that had none is a plain INSERT of its state row; an upsert (ON CONFLICT) costs twice as much. Items
-- planned before this migration count as having one (the upsert, always correct).
ALTER TABLE :schema.run_items ADD COLUMN state_exists boolean NOT NULL DEFAULT true;

-- The foreign keys from run_items and receipts to runs cost a lookup per row: 2.8 s of an 11 s plan of 1M
-- records, and as much again for the receipts. Both tables are written only by the run that owns the rows,
-- after its runs row exists, and runs are never deleted, so the checks bought nothing the engine does not
-- already guarantee.
ALTER TABLE :schema.run_items DROP CONSTRAINT run_items_run_id_fkey;
ALTER TABLE :schema.receipts DROP CONSTRAINT receipts_run_id_fkey;
