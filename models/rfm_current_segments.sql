{{ config(materialized='table') }}
-- Current RFM segments: the latest snapshot of the history, one row per user. With the seed's flaws fixed
-- (percentiles partitioned by snapshot instant), this is exactly the "current" model as of `as_of`.
-- segsync creates it as a view (the history's key starts with snapshot_at, so it reads one index range).
SELECT *
FROM {{ ref('rfm_segments_hist') }}
WHERE snapshot_at = (SELECT MAX(snapshot_at) FROM {{ ref('rfm_segments_hist') }})
