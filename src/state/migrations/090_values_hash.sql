-- A hash of each record's mapped values (src/state/plan-items.ts): with it a plan tells unchanged records from
-- changed ones without building their jsonb payload, most of a plan's cost (bench:sync). On the intent it is
-- the changed record's values hash; on the delivered state it is that hash followed by the payload hash it was
-- confirmed with, so any writer that changes payload_hash (a repair, a removal) invalidates it by itself.
-- Rows delivered before this have none: their payload is built and compared as before, and the next run's plan
-- records their values hash.
ALTER TABLE :schema.run_items ADD COLUMN row_hash text;
ALTER TABLE :schema.delivered ADD COLUMN row_hash text;
